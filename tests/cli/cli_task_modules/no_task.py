"""A module that declares no task."""

VALUE = 1
