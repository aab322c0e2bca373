"""Enum classes (with and without docstring), IntEnum, Literal with defaults."""

from enum import Enum, IntEnum
from typing import Literal

from pydantic import BaseModel, Field

from perago import task


class Codec(str, Enum):
    """Audio codec of the export."""

    FLAC = "flac"
    MP3 = "mp3"


class Channels(IntEnum):
    MONO = 1
    STEREO = 2


class Quality(Enum):
    LOW = "low"
    HIGH = "high"


class ExportParams(BaseModel):
    codec: Codec
    channels: Channels = Channels.STEREO
    quality: Quality = Field(default=Quality.HIGH, description="Encoder preset")
    mode: Literal["fast", "exact"] = "fast"
    bits: Literal[16, 24, 32] = 24
    flag: Literal[True] = True
    mixed: Literal["a", 1] | None = None


class ExportResult(BaseModel):
    codec: Codec
    formats: list[Codec]


@task(name="audio.export", owner_email="audio@example.net")
def export(params: ExportParams) -> ExportResult:
    return ExportResult(codec=params.codec, formats=[params.codec])
