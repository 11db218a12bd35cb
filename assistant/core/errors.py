"""Errors a user can act on.

Every error that should reach a person (in the browser as a ``gr.Error``, on the command
line as one line and a non-zero exit) is a ``UserError``: its message says what went wrong
and what to do about it. Anything else is a bug and keeps its traceback.

    sys.exit(run_command(lambda: export(args)))   # a CLI: prints the result (exit 0) or "error: ..." (exit 2)
"""

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""


class ModelLoadError(UserError):
    """The requested model could not be found or loaded."""


class InputError(UserError):
    """A form field, upload or CLI flag is invalid."""


def run_command(work: Callable[[], object]) -> int:
    """A command line's exit status: run ``work`` and print what it returns (unless None), 0; or print a
    ``UserError`` as one ``error: ...`` line on stderr, 2."""
    try:
        result = work()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result is not None:
        print(result)
    return 0
