"""Every list of adapters a session shows follows the adapter store, from one check on the Fine-tune tab's timer.

``AdapterStore.version()`` changes whenever an adapter is saved, renamed or deleted, by this process or by the
training child process. Each tick, ``follow_adapters`` compares it, together with the adapter of the session's
one-click run once that run has finished, with what the session last drew (one ``gr.State``); when it moved,
the same event redraws the adapter picker above the tabs and the Adapters panel, and the state's ``.change``
redraws the Fine-tune tab's "exists already" note. Nothing else tells a list that the adapters changed: a
finished run, a rename or a delete in the panel all show up here within one tick.

    follow_adapters(timer, seen, store, panel=panel, picker=picker, adapters=adapters, jobs=jobs, quick_job=job)
    seen_key(store, jobs, job_id)                      # what the check compares, without Gradio
    refreshed_picker(adapters, current, wanted=None)    # the picker's update: ``wanted``, else ``current``, else base

Tests: ``pytest tests/test_adapter_lists.py -q``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from assistant.ui.adapter_choice import BASE_MODEL_CHOICE, picker_choices
from assistant.ui.quickstart import adapter_to_select

if TYPE_CHECKING:  # annotations only
    from assistant.served_adapters import ServedAdapters
    from assistant.ui.adapters_panel import AdaptersPanel
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager


def seen_key(store: AdapterStore, jobs: JobManager | None, quick_job: str | None) -> tuple:
    """What a session has to have drawn: the store's version, and the adapter of its one-click run once that
    run has finished (the run publishes before it ends, so the two can move on different ticks)."""
    return store.version(), adapter_to_select(jobs, quick_job) if jobs is not None else None


def newly_finished(key: tuple, last: tuple | None) -> str | None:
    """The one-click run's adapter when ``key`` is the first to have it (so it is selected once), else None."""
    wanted = key[1]
    return wanted if wanted is not None and wanted != (last[1] if last else None) else None


def refreshed_picker(adapters: ServedAdapters | None, current: str | None, wanted: str | None = None) -> gr.Dropdown:
    """The picker listing the adapters usable now, showing ``wanted`` if it is one, else ``current``, else base."""
    names = picker_choices(adapters, heads=True)
    value = wanted if wanted in names else (current if current in names else BASE_MODEL_CHOICE)
    return gr.Dropdown(choices=names, value=value)


def follow_adapters(timer: gr.Timer, seen: gr.State, store: AdapterStore, *, panel: AdaptersPanel | None = None,
                    picker: gr.Dropdown | None = None, adapters: ServedAdapters | None = None,
                    jobs: JobManager | None = None, quick_job: gr.State | None = None) -> None:
    """Wire the one check on ``timer``: redraw ``panel`` and ``picker`` when ``seen_key`` differs from ``seen``
    (which it then updates); select the adapter of ``quick_job`` in ``picker`` once that run has finished."""
    none = gr.State(None)
    inputs = [seen, quick_job if quick_job is not None else none, picker if picker is not None else none,
              panel.picker if panel is not None else none]
    outputs = [seen, *([picker] if picker is not None else []), *(panel.outputs if panel is not None else [])]

    def check(last, job_id, current, selected):
        key = seen_key(store, jobs, job_id)
        if key == last:
            return gr.skip()  # one skip for all outputs
        updates = {seen: key}
        if picker is not None:
            updates[picker] = refreshed_picker(adapters, current, newly_finished(key, last))
        if panel is not None:
            updates.update(zip(panel.outputs, panel.refresh(selected)))
        return updates

    timer.tick(check, inputs, outputs, show_progress="hidden", concurrency_limit=None, api_visibility="private")
