"""The one exception type that the CLI turns into a clean message (no traceback)."""


class UserError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""
