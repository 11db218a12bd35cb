"""Mistakes a user can fix, shown in the page: ``raise shown(exc) from None``.

Gradio prints a traceback for every ``gr.Error`` unless told not to; an expected user error is
logged here as one line instead, so the server log keeps tracebacks for real faults only. A browser
that asks for Chinese gets the message in Chinese above the English one. Tests: ``pytest tests/test_user_errors.py -q``.
"""

from __future__ import annotations

import logging

import gradio as gr

from assistant.ui.errors_zh import bilingual, page_is_chinese

log = logging.getLogger(__name__)


def shown(error) -> gr.Error:
    """A ``gr.Error`` with ``error``'s message (an exception or a string), logged as one line; on a page in
    Chinese (the browser's Accept-Language) the message comes in Chinese too (``assistant.ui.errors_zh``)."""
    message = str(error)
    log.info("user error: %s", message.splitlines()[0] if message else type(error).__name__)
    if page_is_chinese():
        message = bilingual(message)
    return gr.Error(message, print_exception=False)
