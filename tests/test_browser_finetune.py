"""A real browser against the Fine-tune tab and the adapters panel (own small app, tiny Llama as base):
upload a CSV, read the report, set max steps, Start, watch progress, find the adapter in the list.

    pytest tests/test_browser_finetune.py -q
"""

import time
from pathlib import Path

import pytest

from tests.app_server import free_port

pytestmark = [pytest.mark.browser]
SAMPLE = Path(__file__).resolve().parents[1] / "finetune" / "samples" / "sentiment_en.csv"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory, tiny_llm_dir):
    import gradio as gr

    from assistant.ui.adapters_panel import TRANSLATIONS as ADAPTER_LABELS
    from assistant.ui.adapters_panel import build_adapters_panel
    from assistant.ui.finetune_tab import TRANSLATIONS, build_finetune_tab
    from assistant.ui.i18n import build_i18n
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager

    data_dir = tmp_path_factory.mktemp("finetune-data")
    jobs = JobManager(data_dir)
    store = AdapterStore(data_dir / "adapters")
    with gr.Blocks() as demo:
        with gr.Tab("Fine-tune"):
            tab = build_finetune_tab(jobs, store, base_choices=[str(tiny_llm_dir)], default_base=str(tiny_llm_dir),
                                     poll_seconds=0.5)
        with gr.Tab("Adapters"):
            panel = build_adapters_panel(store)
        tab.follow_adapters(panel=panel)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                        i18n=build_i18n(TRANSLATIONS, ADAPTER_LABELS))
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
        jobs.close()


def wait_for_text(page, selector: str, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        element = page.locator(selector)
        content = element.input_value() if selector.endswith("textarea") else element.inner_text()
        if text in content:
            return content
        time.sleep(0.2)
    raise AssertionError(f"{selector} never showed {text!r}; it shows: {content[:500]!r}")


def test_upload_validate_train_and_see_the_adapter(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.locator("#ft-upload input[type=file]").set_input_files(str(SAMPLE))
    wait_for_text(page, "#ft-data-summary", "120 usable rows")
    report = page.locator("#ft-report").inner_text()
    assert "Status" in report and "OK" in report and "positive" in report
    assert page.locator("#ft-preview").inner_text().count("positive") >= 1

    page.locator("#ft-max-steps input").fill("3")
    page.locator("#ft-max-steps input").press("Tab")
    page.locator("#ft-batch-size input").fill("4")
    page.locator("#ft-batch-size input").press("Tab")
    page.locator("#ft-output input, #ft-output textarea").first.fill("browser-adapter")
    page.locator("#ft-output input, #ft-output textarea").first.press("Tab")
    wait_for_text(page, "#ft-estimate", "3 steps")
    wait_for_text(page, "#ft-command", "--max-steps 3")
    page.locator("#ft-start").click()

    seen = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = page.locator("#ft-progress").inner_text()
        if not seen or text != seen[-1]:
            seen.append(text)
        if "Finished" in text or "Failed" in text:
            break
        time.sleep(0.1)
    assert "Finished · step 3/3" in seen[-1], seen
    assert any("Running" in text or "Queued" in text for text in seen[:-1]), f"no progress shown before the end: {seen}"
    assert "browser-adapter" in seen[-1]
    log = wait_for_text(page, "#ft-log textarea", "Adapter saved as 'browser-adapter'")
    assert log.index("step 1/3") < log.index("step 2/3") < log.index("step 3/3"), log
    wait_for_text(page, "#ft-metrics", "Base model vs adapter")

    page.get_by_role("tab", name="Adapters").click()
    wait_for_text(page, "#adapters-table", "browser-adapter", timeout=30)
    assert "Traceback" not in page.content()

    page.reload()  # a reload reconnects to this browser's job through the token kept in BrowserState
    wait_for_text(page, "#ft-progress", "Finished · step 3/3", timeout=30)
    page.close()


def test_start_stays_disabled_until_the_columns_fit_the_task(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.locator("#ft-upload").wait_for()
    assert page.locator("#ft-start").is_disabled(), "Start stays disabled until a dataset passes validation"
    bad = Path(SAMPLE).parent / "domain_text.txt"
    page.locator("#ft-upload input[type=file]").set_input_files(str(bad))
    wait_for_text(page, "#ft-data-summary", "unsupervised")
    page.locator("#ft-method").get_by_label("supervised", exact=True).check()
    page.locator("#ft-task input").click()
    page.get_by_role("option", name="classification", exact=True).click()
    report = wait_for_text(page, "#ft-report", "Error")
    assert "cannot find the columns" in report
    assert page.locator("#ft-start").is_disabled()
    page.close()
