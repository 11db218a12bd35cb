"""Run a task handler with the session's chosen adapter (the picker above the tabs).

Generative adapters run on the shared chat model (``AdapterRuntime.using``); a classifier-head
adapter (classification or NER on MiniLM) runs on its own encoder through ``head_fn``.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from assistant.ui.user_errors import shown
from assistant.adapter_runtime import NO_ADAPTER, AdapterRuntime
from assistant.errors import InputError, UserError


def run_with_adapter(runtime: AdapterRuntime | None, adapter: str | None, task: str, fn: Callable,
                     head_fn: Callable | None = None):
    """``fn()`` with ``adapter`` active, or ``head_fn(head)`` for a head adapter of this task."""
    if runtime is None or not adapter or adapter == NO_ADAPTER:
        return fn()
    try:
        info = runtime.info(adapter)
        if info.kind == "encoder-head-lora":
            if head_fn is None or info.task != task:
                raise InputError(f"'{adapter}' is a {info.task} head; it cannot run the {task} task. "
                                 "Pick '(base model)' or an adapter trained for this task.")
            return head_fn(runtime.head(adapter))
        with runtime.using(adapter):
            return fn()
    except UserError as exc:
        raise shown(exc) from exc


def picker_inputs(picker: gr.Dropdown | None) -> list:
    """The picker as an event input, or a constant "no adapter" when the app serves none."""
    return [picker if picker is not None else gr.State(NO_ADAPTER)]
