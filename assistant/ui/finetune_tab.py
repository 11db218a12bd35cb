"""The Fine-tune tab: dataset upload and validation, settings with an estimate, Start/Stop/Resume, live progress.

    with gr.Blocks() as demo:
        tab = build_finetune_tab(jobs, store)          # jobs: finetune.jobs.JobManager over DATA_DIR
        panel = build_adapters_panel(store)            # store: AdapterStore(DATA_DIR / "adapters")
        tab.follow_adapters(panel=panel)               # once: the lists follow the store (adapter_lists)

Logic lives in ``finetune_forms`` (dataset, config, start) and ``finetune_view`` (rendering a job); this
file lays out widgets and wires them. A page reload reconnects through a token kept in ``gr.BrowserState``;
other sessions see the running job read-only. Tests: ``pytest tests/test_finetune_tab.py -q``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from assistant.ui.adapter_lists import follow_adapters
from assistant.ui.finetune_events import FinetuneEvents, FinetuneWidgets
from assistant.ui.finetune_forms import DEFAULTS, ROLE_SLOTS, sample_files
from assistant.ui.finetune_labels import FIELD_HELP, TRANSLATIONS
from assistant.ui.finetune_view import loss_frame, progress_line
from assistant.ui.i18n import tr
from assistant.ui.quickstart import build_quickstart
from finetune.adapters import AdapterStore
from finetune.config import APPROACHES, METHODS, PREFERENCE_LOSSES, TASKS
from finetune.data.readers import EXTENSIONS
from finetune.jobs import JobManager

__all__ = ["TRANSLATIONS", "FinetuneTab", "build_finetune_tab"]
EMBEDDED_BASES = ["auto", "qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct", "minilm-l6-v2"]
SERIES_COLORS = {"train": "#2563eb", "validation": "#f97316", "kept": "#16a34a"}  # finetune_view.SERIES


@dataclass
class FinetuneTab:
    adapters_seen: gr.State  # what of the adapter store this session last drew (adapter_lists.seen_key)
    timer: gr.Timer
    store: AdapterStore
    jobs: JobManager
    quick_job: gr.State  # the session's one-click run: the app selects its adapter when it ends (quickstart)
    base: gr.Dropdown  # the base model picker (the app refreshes its list from the model list)

    def follow_adapters(self, panel=None, picker: gr.Dropdown | None = None, adapters=None) -> None:
        """Call once: on this tab's timer, redraw the adapters ``panel``, the app's adapter ``picker`` (listing
        ``adapters``'s adapters; the one-click run's adapter selected when it ends) and this tab's "exists
        already" note whenever the adapter store changed."""
        follow_adapters(self.timer, self.adapters_seen, self.store, panel=panel, picker=picker, adapters=adapters,
                        jobs=self.jobs, quick_job=self.quick_job)


def _number(name: str, **kwargs):
    return gr.Number(value=DEFAULTS[name], label=tr(f"finetune.{name}"), info=FIELD_HELP.get(name),
                     elem_id=f"ft-{name.replace('_', '-')}", **kwargs)


def _text(name: str, **kwargs):
    return gr.Textbox(value=DEFAULTS[name], label=tr(f"finetune.{name}"), info=FIELD_HELP.get(name),
                      elem_id=f"ft-{name.replace('_', '-')}", **kwargs)


def base_choice_list(models: list[str] | None = None) -> list[str]:
    """The base picker's choices: the app's model list (usable entries), then the embedded bases not in it."""
    return list(dict.fromkeys([*(models or []), *EMBEDDED_BASES]))


def build_finetune_tab(jobs: JobManager, store: AdapterStore, *, base_choices: list[str] | None = None,
                       default_base: str | None = None, poll_seconds: float = 1.0) -> FinetuneTab:
    """Lay out the Fine-tune tab inside the current ``gr.Blocks`` and wire its events."""
    if Path(store.root) != jobs.data_dir / "adapters":
        raise ValueError(f"The adapter store ({store.root}) must be {jobs.data_dir / 'adapters'}: the jobs save there.")
    bases = base_choice_list(base_choices)
    form: dict[str, gr.components.Component] = {}

    quick = build_quickstart()
    gr.Markdown(tr("finetune.intro"))
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label=tr("finetune.upload"), file_types=sorted(EXTENSIONS), elem_id="ft-upload")
            sample = gr.Dropdown(sample_files(), value=None, label=tr("finetune.sample"), elem_id="ft-sample")
        with gr.Column(scale=2):
            summary = gr.Markdown(tr("empty.ft_data"), elem_id="ft-data-summary")
            report = gr.Markdown(elem_id="ft-report")
    preview = gr.Dataframe(label=tr("finetune.preview"), interactive=False, max_height=260, wrap=True,
                           elem_id="ft-preview")
    with gr.Row():
        roles = [gr.Dropdown(visible=False, elem_id=f"ft-role-{i}", label="column") for i in range(ROLE_SLOTS)]
    with gr.Row():
        form["task"] = gr.Dropdown(list(TASKS), value=DEFAULTS["task"], label=tr("finetune.task"), elem_id="ft-task")
        form["method"] = gr.Radio(list(METHODS), value=DEFAULTS["method"], label=tr("finetune.method"),
                                  elem_id="ft-method")
        form["base"] = gr.Dropdown(bases, value=default_base or DEFAULTS["base"], allow_custom_value=True,
                                   label=tr("finetune.base"), info=FIELD_HELP["base"], elem_id="ft-base")
        form["approach"] = gr.Radio(list(APPROACHES), value=DEFAULTS["approach"], label=tr("finetune.approach"),
                                    elem_id="ft-approach")
    with gr.Row():
        for name in ("learning_rate", "epochs", "max_steps", "batch_size"):
            form[name] = _number(name)
        form["output"] = _text("output", placeholder="sentiment-v1")
    with gr.Row():
        form["labels"] = _text("labels")
        form["entity_types"] = _text("entity_types", visible=False)
        form["source_lang"] = _text("source_lang", visible=False)
        form["target_lang"] = _text("target_lang", visible=False)
        form["pseudo_label_threshold"] = _number("pseudo_label_threshold", visible=False, minimum=0, maximum=1)
    with gr.Accordion(tr("finetune.more"), open=False):
        with gr.Row():
            for name in ("lora_r", "lora_alpha", "lora_dropout", "grad_accum", "max_seq_len"):
                form[name] = _number(name)
        with gr.Row():
            form["target_modules"] = _text("target_modules")
            for name in ("validation_split", "eval_limit", "early_stopping_patience", "seed"):
                form[name] = _number(name)
            form["quant"] = gr.Radio(["nf4", "none"], value=DEFAULTS["quant"], label=tr("finetune.quant"),
                                     info=FIELD_HELP["quant"], elem_id="ft-quant")
        with gr.Row():
            form["preference_loss"] = gr.Radio(list(PREFERENCE_LOSSES), value=DEFAULTS["preference_loss"],
                                               label=tr("finetune.preference_loss"),
                                               info=FIELD_HELP["preference_loss"], elem_id="ft-preference-loss")
            form["beta"] = _number("beta", minimum=0)
    plan = gr.Markdown(elem_id="ft-estimate")
    command = gr.Code(label=tr("finetune.command"), language="shell", interactive=False, elem_id="ft-command")
    with gr.Row():
        start = gr.Button(tr("finetune.start"), variant="primary", interactive=False, elem_id="ft-start")
        stop = gr.Button(tr("finetune.stop"), variant="stop", interactive=False, elem_id="ft-stop")
        resume = gr.Button(tr("finetune.resume"), interactive=False, elem_id="ft-resume")
        resumable = gr.Dropdown([], value=None, label=tr("finetune.resumable"), elem_id="ft-resumable")
    progress = gr.Markdown(progress_line(None), elem_id="ft-progress")
    with gr.Row():
        # A fixed color_map: with colors derived from the (empty) first value, Gradio would draw no lines later.
        loss_plot = gr.LinePlot(loss_frame(None), x="step", y="loss", color="series", color_map=SERIES_COLORS,
                                label=tr("finetune.loss"), height=260, elem_id="ft-loss")
        log = gr.Textbox(label=tr("finetune.log"), lines=10, max_lines=10, interactive=False, elem_id="ft-log",
                         placeholder=tr("empty.ft_log"))
    gr.Markdown(tr("empty.ft_metrics"), elem_classes=["output-hint"])
    metrics = gr.Markdown(elem_id="ft-metrics")

    w = FinetuneWidgets(
        form=form, view_state=gr.State(None), summary=summary, report=report, preview=preview, roles=roles, plan=plan,
        command=command, start=start, stop=stop, resume=resume, resumable=resumable, progress=progress,
        loss_plot=loss_plot, log=log, metrics=metrics,
        browser=gr.BrowserState({"owner": "", "job": ""}, storage_key="finetune-session"), watched=gr.State(None),
        adapters_seen=gr.State(None))
    timer = gr.Timer(poll_seconds)
    events = FinetuneEvents(jobs, store, w)
    _wire(events, w, timer, upload, sample)
    quick.wire(jobs, w.browser, progress, form, sample, events.on_sample, w.dataset_outputs, timer)
    return FinetuneTab(w.adapters_seen, timer, store, jobs, quick.job, form["base"])


def _wire(events: FinetuneEvents, w: FinetuneWidgets, timer: gr.Timer, upload: gr.File, sample: gr.Dropdown) -> None:
    private = {"api_visibility": "private"}
    task_and_method = [w.form["task"], w.form["method"]]
    upload.change(events.on_file, [upload, *task_and_method], w.dataset_outputs, **private)
    sample.input(events.on_sample, [sample, *task_and_method], w.dataset_outputs, **private)
    gr.on([w.form["task"].input, w.form["method"].input], events.on_task, [w.view_state, *task_and_method],
          w.dataset_outputs, **private)
    gr.on([r.input for r in w.roles], events.on_roles, [w.view_state, *w.roles], w.dataset_outputs, **private)
    gr.on([w.form["task"].change, w.form["method"].change], events.task_visibility, task_and_method,
          w.task_outputs, show_progress="hidden", **private)
    # The "exists already" note reads the store's names: redrawn when the form or the adapters moved.
    plan_triggers = [w.view_state.change, w.adapters_seen.change, *(c.change for c in w.form_inputs.values())]
    gr.on(plan_triggers, events.on_plan, inputs_kwargs={"view": w.view_state, **w.form_inputs},
          outputs=[w.plan, w.command], show_progress="hidden", **private)
    w.start.click(events.on_start, inputs_kwargs={"view": w.view_state, "session": w.browser, **w.form_inputs},
                  outputs=[w.browser, w.progress], **private)
    w.stop.click(events.on_stop, w.browser, None, **private)
    w.resume.click(events.on_resume, [w.browser, w.resumable], w.browser, **private)
    timer.tick(events.poll, [w.browser, w.watched, w.resumable], w.poll_outputs, show_progress="hidden",
               concurrency_limit=None, **private)
