"""Mistakes a user can fix, shown in the page: ``@shows_user_errors`` on a handler, or ``raise shown(exc) from None``.

    @shows_user_errors
    def on_run(text):            # a UserError raised inside comes out as shown(error); generators too
        ...

Gradio prints a traceback for every ``gr.Error`` unless told not to; an expected user error is
logged here as one line instead, so the server log keeps tracebacks for real faults only. A browser
that asks for Chinese gets the message in Chinese (from its key in ``assistant.core.user_messages``) above
the English one; an error raised without a key gets a line saying to follow the English one.
Tests: ``pytest tests/test_user_errors.py -q``.
"""

from __future__ import annotations

import functools
import inspect
import logging

import gradio as gr

from assistant.core.errors import UserError
from assistant.core.user_messages import translated

log = logging.getLogger(__name__)

FALLBACK = "请按上面的英文提示修改后重试。"


def page_is_chinese() -> bool:
    """True inside a Gradio event whose browser asks for Chinese first (Accept-Language)."""
    try:
        from gradio.context import LocalContext

        request = LocalContext.request.get(None)
        header = request.headers.get("accept-language", "") if request is not None else ""
    except (LookupError, AttributeError):
        return False
    return header.strip().lower().startswith("zh")


def bilingual(error) -> str:
    """For a Chinese page: the Chinese text of a keyed error (or the fallback line) above the English original."""
    message = str(error)
    chinese = translated(error, "zh") if isinstance(error, BaseException) else None
    return f"{chinese}<br><small>{message}</small>" if chinese else f"{message}<br>{FALLBACK}"


def shown(error) -> gr.Error:
    """A ``gr.Error`` with ``error``'s message (an exception or a string), logged as one line; on a page in
    Chinese (the browser's Accept-Language) the message comes in Chinese too."""
    message = str(error)
    log.info("user error: %s", message.splitlines()[0] if message else type(error).__name__)
    if page_is_chinese():
        message = bilingual(error)
    return gr.Error(message, print_exception=False)


def shows_user_errors(handler):
    """``handler`` (a function or a generator function, as Gradio streams them) with every ``UserError`` it
    raises turned into ``shown(error)``; its signature and docstring stay (Gradio reads them)."""
    if inspect.isgeneratorfunction(handler):
        @functools.wraps(handler)
        def streaming(*args, **kwargs):
            try:
                yield from handler(*args, **kwargs)
            except UserError as exc:
                raise shown(exc) from None
        return streaming

    @functools.wraps(handler)
    def plain(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except UserError as exc:
            raise shown(exc) from None
    return plain
