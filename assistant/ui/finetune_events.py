"""What the Fine-tune tab does on each event: load a dataset, re-check it for another task or column
mapping, show the plan, Start/Stop/Resume, and the poll that redraws the watched job.

Every handler returns ``{component: update}`` keyed by the widgets of ``FinetuneWidgets``; a component left
out of the dict is left as it is. ``finetune_tab`` lays the widgets out and wires these handlers to them.
Tests: ``pytest tests/test_finetune_tab.py -q``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import gradio as gr

from assistant.core.errors import InputError
from assistant.ui.finetune_forms import (FORM_FIELDS, SAMPLES_DIR, DatasetView, estimate_markdown, inspect_dataset,
                                         preview_command, role_slots, sample_files, start_training)
from assistant.ui.finetune_view import log_text, loss_frame, metrics_markdown, progress_line
from assistant.ui.uploads import uploaded_file
from assistant.ui.user_errors import shown, shows_user_errors
from finetune.adapters import AdapterStore
from finetune.jobs import JobManager, JobSnapshot
from finetune.tasks import data_task, task_and_method, task_for_method

# Settings shown only for some tasks; the pseudo-label threshold only for the semi-supervised method.
TASK_FIELDS = {"labels": ("classification",), "entity_types": ("ner",), "source_lang": ("translation",),
               "target_lang": ("translation",)}


@dataclass
class FinetuneWidgets:
    """The tab's components that handlers read or update, by what they show."""

    form: dict[str, gr.components.Component]  # FORM_FIELDS -> its input
    view_state: gr.State  # the DatasetView of the loaded file, or None
    summary: gr.Markdown
    report: gr.Markdown
    preview: gr.Dataframe
    roles: list[gr.Dropdown]  # one per role slot of the task: which column holds that role
    plan: gr.Markdown
    command: gr.Code
    start: gr.Button
    stop: gr.Button
    resume: gr.Button
    resumable: gr.Dropdown
    progress: gr.Markdown
    loss_plot: gr.LinePlot
    log: gr.Textbox
    metrics: gr.Markdown
    browser: gr.BrowserState  # {"owner": token, "job": id}, kept across reloads
    watched: gr.State  # what the last poll rendered, to skip unchanged updates
    adapters_seen: gr.State  # what of the adapter store this session last drew (adapter_lists.seen_key)

    @property
    def form_inputs(self) -> dict[str, gr.components.Component]:
        return {name: self.form[name] for name in FORM_FIELDS}

    @property
    def dataset_outputs(self) -> list:
        return [self.view_state, self.summary, self.report, self.preview, *self.roles, self.form["task"],
                self.form["method"], self.start]

    @property
    def task_outputs(self) -> list:
        return [*(self.form[name] for name in TASK_FIELDS), self.form["pseudo_label_threshold"]]

    @property
    def poll_outputs(self) -> list:
        return [self.browser, self.watched, self.progress, self.loss_plot, self.log, self.metrics, self.stop,
                self.resume, self.resumable]


def red(markdown: str) -> str:
    return f"<span style='color:#dc2626'>{markdown}</span>"


def dataset_updates(w: FinetuneWidgets, view: DatasetView | None, set_task: bool = True) -> dict:
    """What the tab shows for ``view``; ``set_task``: also show the dataset's task and method in the form
    (after an upload), else leave the user's choice alone."""
    if view is None:
        return {w.view_state: None, w.summary: "", w.report: "", w.preview: gr.update(value=None),
                **{role: gr.update(visible=False, value=None) for role in w.roles},
                w.start: gr.update(interactive=False)}
    slots = role_slots(view.task)
    choices = [("(not used)", "")] + [(c, c) for c in view.columns]
    updates = {w.view_state: view, w.summary: view.summary if view.ok else red(view.summary),
               w.report: red(f"**Error:** {view.error}") if view.error else view.markdown,
               w.preview: gr.update(value=view.preview if view.preview["headers"] else None),
               w.start: gr.update(interactive=view.ok)}
    for role, slot in zip(w.roles, [*slots, *[None] * (len(w.roles) - len(slots))]):
        updates[role] = (gr.update(visible=True, choices=choices, value=view.roles.get(slot, ""),
                                   label=f"{slot} column") if slot else gr.update(visible=False, value=None))
    if set_task:
        task, method = task_and_method(view.task)
        updates |= {w.form["task"]: gr.update(value=task), w.form["method"]: gr.update(value=method)}
    return updates


@shows_user_errors
def checked(path, task: str | None, roles: dict | None = None, auto_roles: dict | None = None,
            fallback_task: str = "classification") -> DatasetView:
    """``inspect_dataset`` with its refusals shown to the user."""
    return inspect_dataset(path, task, roles, auto_roles, fallback_task)


class FinetuneEvents:
    """The tab's handlers over one job manager and adapter store."""

    def __init__(self, jobs: JobManager, store: AdapterStore, widgets: FinetuneWidgets):
        self.jobs, self.store, self.w = jobs, store, widgets

    @shows_user_errors
    def on_file(self, path, task, method) -> dict:
        """An uploaded file (only a path this server received as an upload is read)."""
        if not path:
            return dataset_updates(self.w, None)
        path = uploaded_file(path)
        return self._on_dataset(path, task, method)

    def on_sample(self, name, task, method) -> dict:
        """A shipped sample, by one of the names ``sample_files()`` lists."""
        if not name:
            return dataset_updates(self.w, None)
        if name not in sample_files():
            raise shown(InputError(f"'{name}' is not one of the sample datasets: pick one from the list."))
        return self._on_dataset(SAMPLES_DIR / name, task, method)

    def _on_dataset(self, path, task, method) -> dict:
        return dataset_updates(self.w, checked(path, None, fallback_task=data_task(task, method)))

    def on_task(self, view: DatasetView | None, task, method) -> dict:
        """Re-check the loaded file for the task and method chosen now (a method may force its task)."""
        forced = {self.w.form["task"]: gr.update(value=task_for_method(task, method))}
        if view is None:
            return forced
        return dataset_updates(self.w, checked(view.path, data_task(task, method)), set_task=False) | forced

    def on_roles(self, view: DatasetView | None, *chosen) -> dict:
        """Re-check the file with the columns picked in the role dropdowns."""
        if view is None:
            return dataset_updates(self.w, None)
        picked = {role: column for role, column in zip(role_slots(view.task), chosen) if column}
        return dataset_updates(self.w, checked(view.path, view.task, picked, view.auto_roles), set_task=False)

    def task_visibility(self, task, method) -> dict:
        """Show only the settings of the chosen task (and the threshold of the semi-supervised method)."""
        form = self.w.form
        return {**{form[name]: gr.update(visible=task in tasks) for name, tasks in TASK_FIELDS.items()},
                form["pseudo_label_threshold"]: gr.update(visible=method == "semi-supervised")}

    def on_plan(self, view, **form_values) -> dict:
        text = estimate_markdown(view, form_values, self.jobs.data_dir)
        name = (form_values.get("output") or "").strip()
        if name and name in self.store.names():  # the folder names only: no adapter is read
            text += f"\n\nAn adapter named **{name}** exists already: this one will be saved as {name}-2."
        return {self.w.plan: text, self.w.command: preview_command(view, form_values, self.jobs.data_dir)}

    @shows_user_errors
    def on_start(self, view, session: dict | None, **form_values) -> dict:
        owner = owner_of(session)
        job_id = start_training(self.jobs, view, form_values, owner)
        return {self.w.browser: {"owner": owner, "job": job_id},
                self.w.progress: progress_line(self.jobs.get(job_id), owner)}

    @shows_user_errors
    def on_stop(self, session: dict | None) -> None:
        running = self.jobs.current()
        key = (session or {}).get("job") or (running.job_id if running else "")
        if not key:
            raise InputError.keyed("finetune.no_job_to_stop")
        self.jobs.stop(key, owner_of(session))
        gr.Info("Stopping after the current step; the checkpoint is kept for Resume.")

    @shows_user_errors
    def on_resume(self, session: dict | None, selected) -> dict:
        owner = owner_of(session)
        key = selected or (session or {}).get("job")
        if not key:
            raise InputError.keyed("finetune.pick_run_to_resume")
        job_id = self.jobs.resume(key, owner)
        return {self.w.browser: {"owner": owner, "job": job_id}}

    def watched_job(self, owner: str, key: str) -> JobSnapshot | None:
        """The job this browser started (kept across reloads), else its newest, else the running one."""
        snapshot = self.jobs.find(key)
        if snapshot is None:
            own = self.jobs.jobs_for(owner)
            snapshot = next((s for s in own if s.active), own[0] if own else None)
        return snapshot or self.jobs.current()

    def poll(self, session: dict | None, last, selected):
        """Redraw the watched job and the resumable runs when any of them moved (the adapter lists follow the
        store on their own: ``adapter_lists``)."""
        w, jobs = self.w, self.jobs
        state = dict(session or {})
        owner = state.get("owner") or owner_of(None)
        snapshot = self.watched_job(owner, state.get("job") or "")
        if snapshot is not None and snapshot.owner == owner:
            state["job"] = snapshot.job_id
        runs = [(f"{s.run_id} · step {s.step}/{s.total_steps}", s.run_id) for s in jobs.resumable()]
        seen = (snapshot.job_id, snapshot.version, snapshot.queue_position) if snapshot else None
        key = (state.get("owner"), state.get("job"), seen, tuple(runs))
        if key == last:
            return gr.skip()  # one skip for all outputs
        mine = snapshot is not None and snapshot.owner in (None, owner)
        run_ids = [r[1] for r in runs]
        choice = selected if selected in run_ids else (snapshot.run_id if snapshot and snapshot.run_id in run_ids
                                                       else (run_ids[0] if run_ids else None))
        updates = {w.watched: key, w.progress: progress_line(snapshot, owner), w.loss_plot: loss_frame(snapshot),
                   w.log: log_text(snapshot), w.metrics: metrics_markdown(snapshot.metrics if snapshot else None),
                   w.stop: gr.update(interactive=bool(mine and snapshot.active)),
                   w.resume: gr.update(interactive=bool(runs)), w.resumable: gr.update(choices=runs, value=choice)}
        # Only Start (or a one-click run) gives a session its owner token: a tick that began before that click
        # and wrote a fresh token of its own would orphan the job just started.
        if state.get("owner"):
            updates[w.browser] = {**state, "owner": owner}
        return updates


def owner_of(session: dict | None) -> str:
    return (session or {}).get("owner") or secrets.token_urlsafe(16)
