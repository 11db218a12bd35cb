"""The one check that keeps a session's adapter lists (picker, Adapters panel, the Fine-tune tab's name check)
in step with the adapter store: it redraws them when the store's version moved and only then, and selects a
one-click run's adapter once when that run has finished. Real store, real job manager (a stand-in run that
publishes a real adapter folder), the tiny Llama as the served model; no server.

    pytest tests/test_adapter_lists.py -q
"""

import time

import gradio as gr
import pytest

from assistant.served_adapters import ServedAdapters
from assistant.ui.adapter_choice import BASE_MODEL_CHOICE
from assistant.ui.adapter_lists import newly_finished, seen_key
from assistant.ui.adapters_panel import build_adapters_panel
from assistant.ui.finetune_tab import build_finetune_tab
from assistant.ui.quickstart import start_quickstart
from finetune.adapters import AdapterStore
from finetune.jobs import JobManager
from tests.adapter_files import publish


def stand_in(config, run_dir, resume, emit, stop):
    """A training run in a blink: publishes a real adapter folder under the requested name, then reports it."""
    from finetune.recipe import RunSummary

    emit("start", {"total_steps": 1, "train_examples": 9, "val_examples": 3, "command": "python -m finetune"})
    info = publish(AdapterStore(f"{config.data_dir}/adapters"), config.output, base_model=SERVED)
    emit("finished", {"adapter": info.name})
    return RunSummary(run_id=run_dir.name, status="finished", steps=1, adapter=info.name)


SERVED = "served-model"


def choices(dropdown: gr.Dropdown) -> list[str]:
    return [value for _, value in dropdown.choices]


@pytest.fixture
def app(tmp_path, tiny_loaded):
    jobs = JobManager(tmp_path / "data", runner=stand_in)
    store = AdapterStore(tmp_path / "data" / "adapters")
    adapters = ServedAdapters(tiny_loaded, store, SERVED)
    with gr.Blocks() as demo:
        picker = gr.Dropdown([BASE_MODEL_CHOICE], value=BASE_MODEL_CHOICE)
        tab = build_finetune_tab(jobs, store)
        panel = build_adapters_panel(store)
        tab.follow_adapters(panel=panel, picker=picker, adapters=adapters)
    checks = [f.fn for f in demo.fns.values() if f.fn.__qualname__ == "follow_adapters.<locals>.check"]
    assert len(checks) == 1, "one check on the tab's timer"
    yield checks[0], jobs, store, picker, panel, tab
    jobs.close()


def test_the_lists_are_redrawn_when_the_store_moved_and_only_then(app):
    check, jobs, store, picker, panel, tab = app
    first = check(None, None, BASE_MODEL_CHOICE, None)  # a fresh session draws once
    assert set(first) == {tab.adapters_seen, picker, *panel.outputs}
    assert choices(first[picker]) == [BASE_MODEL_CHOICE]
    seen = first[tab.adapters_seen]
    assert seen == seen_key(store, jobs, None) and check(seen, None, BASE_MODEL_CHOICE, None) == gr.skip()
    store.list(), store.names()
    assert check(seen, None, BASE_MODEL_CHOICE, None) == gr.skip(), "reading the store changes nothing"

    publish(store, "mine", base_model=SERVED)  # what a training run in another process does
    saved = check(seen, None, BASE_MODEL_CHOICE, None)
    assert choices(saved[picker]) == [BASE_MODEL_CHOICE, "mine"]
    assert saved[picker].value == BASE_MODEL_CHOICE, "a new adapter is listed, not picked"
    assert saved[panel.picker]["value"] == "mine" and saved[panel.table]["value"]["data"][0][0] == "mine"

    store.rename("mine", "ours")  # what the panel's Rename does: the picker's choice follows it
    renamed = check(saved[tab.adapters_seen], None, "mine", "mine")
    assert choices(renamed[picker]) == [BASE_MODEL_CHOICE, "ours"]
    assert renamed[picker].value == BASE_MODEL_CHOICE and renamed[panel.picker]["value"] == "ours"
    store.delete("ours")
    deleted = check(renamed[tab.adapters_seen], None, BASE_MODEL_CHOICE, "ours")
    assert choices(deleted[picker]) == [BASE_MODEL_CHOICE]
    assert deleted[panel.picker]["value"] is None and deleted[panel.table]["value"]["data"] == []


def test_a_one_click_run_s_adapter_is_selected_once_when_the_run_has_finished(app):
    check, jobs, store, picker, panel, tab = app
    seen = check(None, None, BASE_MODEL_CHOICE, None)[tab.adapters_seen]
    job = start_quickstart(jobs, "sentiment", owner="alice")
    deadline = time.monotonic() + 30
    while jobs.get(job).state != "finished":
        assert time.monotonic() < deadline, jobs.get(job)
        time.sleep(0.05)
    assert newly_finished(seen_key(store, jobs, job), seen) == "try-sentiment"
    done = check(seen, job, BASE_MODEL_CHOICE, None)
    assert done[picker].value == "try-sentiment" and done[tab.adapters_seen][1] == "try-sentiment"
    assert check(done[tab.adapters_seen], job, "try-sentiment", None) == gr.skip()

    publish(store, "later", base_model=SERVED)  # the user picked the base meanwhile: the run is not picked again
    later = check(done[tab.adapters_seen], job, BASE_MODEL_CHOICE, None)
    assert later[picker].value == BASE_MODEL_CHOICE
    assert choices(later[picker]) == [BASE_MODEL_CHOICE, "later", "try-sentiment"]
