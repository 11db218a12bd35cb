"""Turn resource failures during training into messages a user can act on.

Out of memory and a full disk are not bugs in the code and not the user's data: they get a
plain message with the fix; anything else stays an internal error with its traceback logged.
"""

from __future__ import annotations

import errno

from assistant.core.errors import UserError


def explain(exc: BaseException) -> UserError | None:
    """A UserError describing ``exc`` if it is a resource problem, else None."""
    if isinstance(exc, UserError):
        return exc
    oom_types = tuple(t for t in (MemoryError, getattr(__import__("torch"), "OutOfMemoryError", None)) if t)
    if isinstance(exc, oom_types) or "out of memory" in str(exc).lower():
        return UserError("Training ran out of memory. Lower the batch size or the max sequence length, "
                         "use gradient accumulation for the same effective batch, or a smaller base model. "
                         "The last checkpoint (if any) can be resumed.")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return UserError(f"The disk is full ({exc.filename or 'data folder'}). Free some space (old runs in "
                         "data/runs/, exported models) and resume the run; saved adapters were not touched.")
    return None
