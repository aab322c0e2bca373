"""Nested models reached through lists, dicts, Optional, unions and field descriptions."""

from typing import Optional

from pydantic import BaseModel, Field

from perago import task


class Coordinates(BaseModel):
    """Where a venue is."""

    lat: float
    lon: float


class Venue(BaseModel):
    name: str
    location: Coordinates = Field(description="GPS position of the venue")
    backup_location: Optional[Coordinates] = None


class Seat(BaseModel):
    row: str
    number: int = Field(gt=0)


class Booking(BaseModel):
    venue: Venue
    seats: list[Seat] = Field(min_length=1)
    by_section: dict[str, Seat]
    sections: dict[str, list[Seat]] = Field(default_factory=dict)
    alternative: Seat | Venue | None = None
    tags: set[str] = Field(default_factory=set)
    pair: tuple[int, str]


class Ticket(BaseModel):
    seat: Seat
    venue: Venue


class BookingResult(BaseModel):
    tickets: list[Ticket]
    primary: Ticket | None = Field(default=None, description="The first ticket, if any")
    notes: dict[str, str] = {}


@task(name="box_office.book", owner_email="box-office@example.net", description="")
def book(params: Booking) -> BookingResult:
    return BookingResult(tickets=[])
