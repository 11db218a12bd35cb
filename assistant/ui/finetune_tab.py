"""The Fine-tune tab: dataset upload and validation, settings with an estimate, Start/Stop/Resume, live progress.

    with gr.Blocks() as demo:
        tab = build_finetune_tab(jobs, store)          # jobs: finetune.jobs.JobManager over DATA_DIR
        panel = build_adapters_panel(store)            # store: AdapterStore(DATA_DIR / "adapters")
        panel.refresh_on(tab.adapters_changed)

Logic lives in ``finetune_forms`` (dataset, config, start) and ``finetune_view`` (rendering a job); this
file lays out widgets and wires them. A page reload reconnects through a token kept in ``gr.BrowserState``;
other sessions see the running job read-only. Tests: ``pytest tests/test_finetune_tab.py -q``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from assistant.ui.user_errors import shown
from assistant.errors import UserError
from assistant.ui.finetune_forms import (DEFAULTS, FORM_FIELDS, ROLE_SLOTS, SAMPLES_DIR, DatasetView, data_task,
                                         estimate_markdown, form_task, inspect_dataset, preview_command, role_slots,
                                         sample_files, start_training)
from assistant.ui.finetune_labels import FIELD_HELP, TRANSLATIONS
from assistant.ui.finetune_view import log_text, loss_frame, metrics_markdown, progress_line
from assistant.ui.i18n import tr
from assistant.ui.quickstart import build_quickstart
from finetune.adapters import AdapterStore
from finetune.config import APPROACHES, METHODS, PREFERENCE_LOSSES, TASKS
from finetune.data.readers import EXTENSIONS
from finetune.jobs import JobManager, JobSnapshot

__all__ = ["TRANSLATIONS", "FinetuneTab", "build_finetune_tab"]
EMBEDDED_BASES = ["auto", "smollm2-135m-instruct", "minilm-l6-v2"]
SERIES_COLORS = {"train": "#2563eb", "validation": "#f97316"}
TASK_FIELDS = {"labels": ("classification",), "entity_types": ("ner",), "source_lang": ("translation",),
               "target_lang": ("translation",)}


@dataclass
class FinetuneTab:
    adapters_changed: gr.State  # goes up by one each time a job publishes an adapter
    timer: gr.Timer
    quick_job: gr.State | None = None  # a one-click run whose adapter the app selects when it ends (quickstart)


def _dataset_updates(view: DatasetView | None, set_task: bool = True) -> tuple:
    """Updates for [state, summary, report, preview, *roles, task, method, start]; ``set_task``: show the
    dataset's task and method in the form (after an upload), else leave the user's choice alone."""
    if view is None:
        hidden = [gr.update(visible=False, value=None) for _ in range(ROLE_SLOTS)]
        return (None, "", "", gr.update(value=None), *hidden, gr.update(), gr.update(), gr.update(interactive=False))
    slots = role_slots(view.task)
    choices = [("(not used)", "")] + [(c, c) for c in view.columns]
    roles = [gr.update(visible=True, choices=choices, value=view.roles.get(slots[i], ""), label=f"{slots[i]} column")
             if i < len(slots) else gr.update(visible=False, value=None) for i in range(ROLE_SLOTS)]
    task, method = form_task(view.task)
    preview = view.preview if view.preview["headers"] else None
    summary = view.summary if view.ok else _red(view.summary)
    report = _red(f"**Error:** {view.error}") if view.error else view.markdown
    return (view, summary, report, gr.update(value=preview), *roles,
            gr.update(value=task) if set_task else gr.update(), gr.update(value=method) if set_task else gr.update(),
            gr.update(interactive=view.ok))


def _red(markdown: str) -> str:
    return f"<span style='color:#dc2626'>{markdown}</span>"


def _task_visibility(task: str, method: str) -> tuple:
    """Show only the settings of the chosen task: [labels, entity_types, source, target, threshold]."""
    shown = [gr.update(visible=task in tasks) for tasks in TASK_FIELDS.values()]
    return (*shown, gr.update(visible=method == "semi-supervised"))


def _number(name: str, **kwargs):
    return gr.Number(value=DEFAULTS[name], label=tr(f"finetune.{name}"), info=FIELD_HELP.get(name),
                     elem_id=f"ft-{name.replace('_', '-')}", **kwargs)


def _text(name: str, **kwargs):
    return gr.Textbox(value=DEFAULTS[name], label=tr(f"finetune.{name}"), info=FIELD_HELP.get(name),
                      elem_id=f"ft-{name.replace('_', '-')}", **kwargs)


def build_finetune_tab(jobs: JobManager, store: AdapterStore, *, base_choices: list[str] | None = None,
                       default_base: str | None = None, poll_seconds: float = 1.0) -> FinetuneTab:
    """Lay out the Fine-tune tab inside the current ``gr.Blocks`` and wire its events."""
    if Path(store.root) != jobs.data_dir / "adapters":
        raise ValueError(f"The adapter store ({store.root}) must be {jobs.data_dir / 'adapters'}: the jobs save there.")
    bases = list(dict.fromkeys([*(base_choices or []), *EMBEDDED_BASES]))
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
            for name in ("validation_split", "eval_limit", "seed"):
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

    view_state = gr.State(None)
    watched = gr.State(None)  # what the last poll rendered, to skip unchanged updates
    adapters_changed = gr.State(jobs.finished_count)
    browser = gr.BrowserState({"owner": "", "job": ""}, storage_key="finetune-session")
    timer = gr.Timer(poll_seconds)
    form_inputs = [form[name] for name in FORM_FIELDS]
    dataset_outputs = [view_state, summary, report, preview, *roles, form["task"], form["method"], start]
    task_outputs = [form["labels"], form["entity_types"], form["source_lang"], form["target_lang"],
                    form["pseudo_label_threshold"]]
    private = {"api_visibility": "private"}

    def values(args) -> dict:
        return dict(zip(FORM_FIELDS, args))

    def owner_of(state: dict | None) -> str:
        return (state or {}).get("owner") or secrets.token_urlsafe(16)

    def on_file(path, task, method):
        if not path:
            return _dataset_updates(None)
        try:
            return _dataset_updates(inspect_dataset(path, fallback_task=data_task(task, method)))
        except UserError as exc:
            raise shown(exc) from exc

    def on_task(view: DatasetView | None, task, method):
        forced = {"unsupervised": "unsupervised", "semi-supervised": "classification"}.get(method, task)
        if view is None:
            return (*(gr.skip(),) * (len(dataset_outputs) - 3), gr.update(value=forced), gr.skip(), gr.skip())
        try:
            updates = _dataset_updates(inspect_dataset(view.path, data_task(task, method)), set_task=False)
        except UserError as exc:
            raise shown(exc) from exc
        return (*updates[:-3], gr.update(value=forced), *updates[-2:])

    def on_roles(view: DatasetView | None, *chosen):
        if view is None:
            return _dataset_updates(None)
        picked = {role: column for role, column in zip(role_slots(view.task), chosen) if column}
        try:
            return _dataset_updates(inspect_dataset(view.path, view.task, picked, view.auto_roles), set_task=False)
        except UserError as exc:
            raise shown(exc) from exc

    def on_plan(view, *args):
        form_values = values(args)
        text = estimate_markdown(view, form_values, jobs.data_dir)
        name = (form_values.get("output") or "").strip()
        if name and any(info.name == name for info in store.list()):
            text += f"\n\nAn adapter named **{name}** exists already: this one will be saved as {name}-2."
        return text, preview_command(view, form_values, jobs.data_dir)

    def on_start(view, state, *args):
        owner = owner_of(state)
        try:
            job_id = start_training(jobs, view, values(args), owner)
        except UserError as exc:
            raise shown(exc) from exc
        return {"owner": owner, "job": job_id}, progress_line(jobs.get(job_id), owner)

    def on_stop(state):
        owner = owner_of(state)
        running = jobs.current()
        key = (state or {}).get("job") or (running.job_id if running else "")
        if not key:
            raise shown("There is no job to stop.")
        try:
            jobs.stop(key, owner)
        except UserError as exc:
            raise shown(exc) from exc
        gr.Info("Stopping after the current step; the checkpoint is kept for Resume.")

    def on_resume(state, selected):
        owner = owner_of(state)
        key = selected or (state or {}).get("job")
        if not key:
            raise shown("Pick a stopped run to resume in the list next to the button.")
        try:
            job_id = jobs.resume(key, owner)
        except UserError as exc:
            raise shown(exc) from exc
        return {"owner": owner, "job": job_id}

    def watched_job(owner: str, key: str) -> JobSnapshot | None:
        """The job this browser started (kept across reloads), else its newest, else the running one."""
        snapshot = jobs.find(key)
        if snapshot is None:
            own = jobs.jobs_for(owner)
            snapshot = next((s for s in own if s.active), own[0] if own else None)
        return snapshot or jobs.current()

    def poll(state, last, selected):
        state = dict(state or {})
        owner = state.get("owner") or owner_of(None)
        snapshot = watched_job(owner, state.get("job") or "")
        if snapshot is not None and snapshot.owner == owner:
            state["job"] = snapshot.job_id
        runs = [(f"{s.run_id} · step {s.step}/{s.total_steps}", s.run_id) for s in jobs.resumable()]
        seen = (snapshot.job_id, snapshot.version, snapshot.queue_position) if snapshot else None
        key = (state.get("owner"), state.get("job"), seen, jobs.finished_count, tuple(runs))
        if key == last:
            return (gr.skip(),) * 10
        mine = snapshot is not None and snapshot.owner in (None, owner)
        run_ids = [r[1] for r in runs]
        choice = selected if selected in run_ids else (snapshot.run_id if snapshot and snapshot.run_id in run_ids
                                                       else (run_ids[0] if run_ids else None))
        # Only Start (or a one-click run) gives a session its owner token: a tick that began before that click
        # and wrote a fresh token of its own would orphan the job just started.
        return ({**state, "owner": owner} if state.get("owner") else gr.skip(), key, progress_line(snapshot, owner),
                loss_frame(snapshot),
                log_text(snapshot), metrics_markdown(snapshot.metrics if snapshot else None),
                gr.update(interactive=bool(mine and snapshot.active)), gr.update(interactive=bool(runs)),
                gr.update(choices=runs, value=choice), jobs.finished_count)

    upload.change(on_file, [upload, form["task"], form["method"]], dataset_outputs, **private)
    def on_sample(name, task, method):
        return on_file(str(SAMPLES_DIR / name) if name else None, task, method)

    sample.input(on_sample, [sample, form["task"], form["method"]], dataset_outputs, **private)
    gr.on([form["task"].input, form["method"].input], on_task, [view_state, form["task"], form["method"]],
          dataset_outputs, **private)
    gr.on([r.input for r in roles], on_roles, [view_state, *roles], dataset_outputs, **private)
    gr.on([form["task"].change, form["method"].change], _task_visibility, [form["task"], form["method"]],
          task_outputs, show_progress="hidden", **private)
    gr.on([view_state.change, *(c.change for c in form_inputs)], on_plan, [view_state, *form_inputs],
          [plan, command], show_progress="hidden", **private)
    start.click(on_start, [view_state, browser, *form_inputs], [browser, progress], **private)
    stop.click(on_stop, browser, None, **private)
    resume.click(on_resume, [browser, resumable], browser, **private)
    timer.tick(poll, [browser, watched, resumable],
               [browser, watched, progress, loss_plot, log, metrics, stop, resume, resumable, adapters_changed],
               show_progress="hidden", concurrency_limit=None, **private)
    quick.wire(jobs, browser, progress, form, sample, on_sample, dataset_outputs, timer)
    return FinetuneTab(adapters_changed, timer, quick.pending)
