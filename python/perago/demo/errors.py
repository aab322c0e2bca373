"""The one error the demo reports to the user."""


class DemoError(Exception):
    """The demo cannot go on; `str(exc)` is the message for the `error:` line."""
