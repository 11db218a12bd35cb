"""The Fine-tune tab's event handlers: what each returns, keyed by component, for a dataset, a task change,
the plan, Start and the poll. No server, no model.

    pytest tests/test_finetune_events.py -q
"""

from pathlib import Path

import gradio as gr
import pytest

from assistant.ui.finetune_events import FinetuneEvents, FinetuneWidgets
from assistant.ui.finetune_forms import DEFAULTS, FORM_FIELDS, ROLE_SLOTS
from finetune.adapters import AdapterStore
from finetune.jobs import JobManager
from tests.adapter_files import publish

SAMPLES = Path(__file__).resolve().parents[1] / "finetune" / "samples"


@pytest.fixture
def jobs(tmp_path):
    manager = JobManager(tmp_path / "data")
    yield manager
    manager.close()


@pytest.fixture
def widgets() -> FinetuneWidgets:
    with gr.Blocks():
        return FinetuneWidgets(
            form={name: gr.Textbox() for name in FORM_FIELDS}, view_state=gr.State(None), summary=gr.Markdown(),
            report=gr.Markdown(), preview=gr.Dataframe(), roles=[gr.Dropdown() for _ in range(ROLE_SLOTS)],
            plan=gr.Markdown(), command=gr.Code(), start=gr.Button(), stop=gr.Button(), resume=gr.Button(),
            resumable=gr.Dropdown(), progress=gr.Markdown(), loss_plot=gr.LinePlot(), log=gr.Textbox(),
            metrics=gr.Markdown(), browser=gr.BrowserState(), watched=gr.State(None), adapters_seen=gr.State(None))


@pytest.fixture
def events(jobs, widgets) -> FinetuneEvents:
    return FinetuneEvents(jobs, AdapterStore(jobs.data_dir / "adapters"), widgets)


def test_a_sample_fills_the_dataset_outputs_and_the_task(events, widgets):
    updates = events.on_sample("sentiment_en.csv", "ner", "supervised")
    assert set(updates) == set(widgets.dataset_outputs)
    view = updates[widgets.view_state]
    assert view.ok and view.rows == 120 and "120 usable rows" in updates[widgets.summary]
    assert updates[widgets.form["task"]]["value"] == "classification"
    assert updates[widgets.form["method"]]["value"] == "supervised"
    assert updates[widgets.start]["interactive"] is True
    text_role, label_role, *unused = (updates[role] for role in widgets.roles)
    assert (text_role["value"], text_role["label"], label_role["value"]) == ("text", "text column", "label")
    assert all(role["visible"] is False for role in unused)


def test_no_file_clears_the_view_and_leaves_the_task_alone(events, widgets):
    updates = events.on_file(None, "ner", "supervised")
    assert updates[widgets.view_state] is None and updates[widgets.start]["interactive"] is False
    assert widgets.form["task"] not in updates and widgets.form["method"] not in updates
    assert set(updates) == set(widgets.dataset_outputs) - {widgets.form["task"], widgets.form["method"]}


def test_a_method_change_rechecks_the_file_and_sets_the_task_it_trains(events, widgets):
    view = events.on_sample("sentiment_semi_en.csv", "classification", "supervised")[widgets.view_state]
    assert view.task == "semi_supervised"
    updates = events.on_task(view, "ner", "semi-supervised")
    assert updates[widgets.form["task"]]["value"] == "classification"
    assert updates[widgets.view_state].task == "semi_supervised" and widgets.form["method"] not in updates
    assert events.on_task(None, "ner", "unsupervised") == {widgets.form["task"]: gr.update(value="unsupervised")}


def test_task_visibility_shows_only_the_fields_of_the_task(events, widgets):
    shown = events.task_visibility("translation", "supervised")
    assert set(shown) == set(widgets.task_outputs)
    visible = {name for name in ("labels", "entity_types", "source_lang", "target_lang", "pseudo_label_threshold")
               if shown[widgets.form[name]]["visible"]}
    assert visible == {"source_lang", "target_lang"}
    semi = events.task_visibility("classification", "semi-supervised")
    assert semi[widgets.form["labels"]]["visible"] and semi[widgets.form["pseudo_label_threshold"]]["visible"]


def test_the_plan_warns_of_a_taken_name_from_the_store_s_names(events, widgets, monkeypatch):
    form = {**{name: DEFAULTS[name] for name in FORM_FIELDS}, "output": "mine"}
    publish(events.store, "mine"), publish(events.store, "other")
    monkeypatch.setattr(AdapterStore, "list", lambda self: pytest.fail("the plan must not list the adapters"))
    plan = events.on_plan(None, **form)
    assert set(plan) == {widgets.plan, widgets.command}
    assert "An adapter named **mine** exists already" in plan[widgets.plan]
    events.store.delete("mine")
    assert "exists already" not in events.on_plan(None, **form)[widgets.plan]
    assert "python -m finetune" in plan[widgets.command]


def test_start_gets_the_form_by_name_then_the_poll_keys_every_update_and_skips_an_unchanged_tick(
        events, widgets, jobs, monkeypatch):
    view = events.on_sample("sentiment_en.csv", "classification", "supervised")[widgets.view_state]
    form = {**{name: DEFAULTS[name] for name in FORM_FIELDS}, "max_steps": 7}
    queued = []
    monkeypatch.setattr("assistant.ui.finetune_events.start_training",
                        lambda manager, dataset, values, owner: queued.append((dataset, values, owner)) or "job-1")
    monkeypatch.setattr(jobs, "get", lambda key: None)  # the fake job-1 was never queued
    with pytest.raises(gr.Error, match="There is no job to stop"):
        events.on_stop({"owner": "alice", "job": ""})
    started = events.on_start(view, {"owner": "alice", "job": ""}, **form)
    assert queued == [(view, form, "alice")]
    assert set(started) == {widgets.browser, widgets.progress}
    assert started[widgets.browser] == {"owner": "alice", "job": "job-1"}
    assert "No training job yet" in started[widgets.progress]

    first = events.poll({"owner": "alice", "job": ""}, None, None)
    assert set(first) == set(widgets.poll_outputs)
    assert first[widgets.browser] == {"owner": "alice", "job": ""}
    assert "No training job yet" in first[widgets.progress]
    assert events.poll({"owner": "alice", "job": ""}, first[widgets.watched], None) == gr.skip()
    assert widgets.browser not in events.poll({}, None, None), "a tick never hands out an owner token of its own"
