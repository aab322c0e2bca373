"""Declares no task at all."""

from pydantic import BaseModel


class Unused(BaseModel):
    a: int
