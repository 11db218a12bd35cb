"""Errors a user can act on.

Every error that should reach a person (in the browser as a ``gr.Error``, on the command
line as one line and a non-zero exit) is a ``UserError``: its message says what went wrong
and what to do about it. Anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""


class ModelLoadError(UserError):
    """The requested model could not be found or loaded."""


class InputError(UserError):
    """A form field, upload or CLI flag is invalid."""
