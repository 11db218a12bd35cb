"""Run a task handler with the session's chosen adapter (the picker above the tabs).

The picker shows ``BASE_MODEL_CHOICE`` for "no adapter"; ``picked_adapter`` turns a picker value (or an
API argument, where empty means the base) into the adapter name or None, which is all the core sees.

Generative adapters run on the shared chat model (``ServedAdapters.using``); a classifier-head
adapter (classification or NER on MiniLM) runs on its own encoder through ``head_fn``.
"""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from assistant.core.errors import InputError
from assistant.served_adapters import ServedAdapters
from assistant.ui.user_errors import shows_user_errors

BASE_MODEL_CHOICE = "(base model)"
"""The picker's label for running without an adapter: display only, never passed past the UI."""


def picked_adapter(choice: str | None) -> str | None:
    """The adapter name a picker value (or API argument) stands for; None for the base model."""
    return None if not choice or choice == BASE_MODEL_CHOICE else choice


def picker_choices(adapters: ServedAdapters | None, heads: bool = False) -> list[str]:
    """What an adapter picker lists: the base model first, then the adapters usable here."""
    return [BASE_MODEL_CHOICE, *(adapters.adapter_names(heads=heads) if adapters is not None else [])]


@shows_user_errors
def run_with_adapter(adapters: ServedAdapters | None, adapter: str | None, task: str, fn: Callable,
                     head_fn: Callable | None = None):
    """``fn()`` with ``adapter`` (a picker value) active, or ``head_fn(head)`` for a head adapter of this task."""
    adapter = picked_adapter(adapter)
    if adapters is None or adapter is None:
        return fn()
    info = adapters.info(adapter)
    if info.kind == "encoder-head-lora":
        if head_fn is None or info.task != task:
            raise InputError.keyed("adapters.head_for_other_task", adapter=adapter, head_task=info.task, task=task,
                                   base=BASE_MODEL_CHOICE)
        return head_fn(adapters.head(adapter))
    with adapters.using(adapter):
        return fn()


def picker_inputs(picker: gr.Dropdown | None) -> list:
    """The picker as an event input, or a constant "no adapter" when the app serves none."""
    return [picker if picker is not None else gr.State(None)]
