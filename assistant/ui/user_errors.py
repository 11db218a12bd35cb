"""Mistakes a user can fix, shown in the page: ``raise shown(exc) from None``.

Gradio prints a traceback for every ``gr.Error`` unless told not to; an expected user error is
logged here as one line instead, so the server log keeps tracebacks for real faults only.
"""

from __future__ import annotations

import logging

import gradio as gr

log = logging.getLogger(__name__)


def shown(error) -> gr.Error:
    """A ``gr.Error`` with ``error``'s message (an exception or a string), logged as one line."""
    message = str(error)
    log.info("user error: %s", message.splitlines()[0] if message else type(error).__name__)
    return gr.Error(message, print_exception=False)
