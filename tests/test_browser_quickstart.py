"""The one-click fine-tune's wiring in a real browser, with a stand-in training run (seconds, no model):
the click fills the form and dataset view, the tab follows the job, the status line reports the adapter.

    pytest tests/test_browser_quickstart.py -q      # the real run: tests/test_browser_examples.py
"""

import time

import pytest

from tests.app_server import free_port
from tests.chromium import chromium
from tests.test_browser_finetune import wait_for_text

pytestmark = [pytest.mark.browser]


def stand_in(config, run_dir, resume, emit, stop):
    from finetune.recipe import RunSummary

    emit("start", {"total_steps": 2, "train_examples": 90, "val_examples": 30, "command": "python -m finetune"})
    time.sleep(1.5)  # long enough for a poll to see it running
    emit("finished", {"adapter": config.output})
    return RunSummary(run_id=run_dir.name, status="finished", steps=2, adapter=config.output)


@pytest.fixture
def app_url(tmp_path):
    import gradio as gr

    from assistant.ui.finetune_tab import build_finetune_tab
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager

    jobs = JobManager(tmp_path, runner=stand_in)
    seen = []
    with gr.Blocks() as demo:
        tab = build_finetune_tab(jobs, AdapterStore(tmp_path / "adapters"), poll_seconds=0.5)
        tab.quick_job.change(lambda job: seen.append(job), tab.quick_job, None)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", jobs, seen
    finally:
        demo.close()
        jobs.close()


def test_a_click_right_after_the_page_opens_is_followed_to_the_end(app_url):
    """Clicked before the tab's first poll: the job must not be orphaned by that poll (it once was)."""
    url, jobs, seen = app_url
    with chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        page.locator("#quickstart-ner").click()
        wait_for_text(page, "#ft-progress", "Finished", timeout=30)
        assert "try-ner" in page.locator("#ft-progress").inner_text()
        wait_for_text(page, "#quickstart-status", "Done: adapter **try-ner**".replace("**", ""), timeout=15)
        wait_for_text(page, "#ft-data-summary", "ner_en.conll", timeout=15)
        assert page.locator("#ft-max-steps input").input_value() == "100"
    assert seen and set(seen) == {seen[0]}  # the app's picker hook gets the one job to select
    job = jobs.get(seen[0])
    assert job.config.task == "ner" and job.config.base == "minilm-l6-v2" and job.config.max_steps == 100
