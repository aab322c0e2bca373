"""Emulators of the external systems perago talks to, usable by users' own tests."""

from .lakefs import LakeFSEmulator
