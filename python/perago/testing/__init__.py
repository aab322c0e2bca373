"""Emulators of the external systems perago talks to, usable by users' own tests."""

from .conductor import ConductorEmulator
from .lakefs import LakeFSEmulator
