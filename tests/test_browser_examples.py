"""A new user's first clicks: each tab's example runs and shows a result (real browser, real models)."""

import pytest

from tests.app_server import running_app
from tests.chromium import chromium
from tests.test_browser_chat import bot_text

pytestmark = [pytest.mark.browser, pytest.mark.real]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    with running_app(env={"ASSISTANT_DATA_DIR": str(tmp_path_factory.mktemp("examples"))}) as url, \
            chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        yield page


@pytest.mark.parametrize(("tab", "example", "result", "expected"), [
    ("Classification", "An absolute delight from start to finish!", "#classify-scores", "positive"),
    ("NER", "Angela Merkel met Tim Cook at Apple's office in Berlin.", "#ner-json", "Merkel"),
    ("Translation", "The house is small but very cozy.", "#translate-output textarea", None),
    ("FAQ", "What should I do if the model overfits during fine-tuning?", "#faq-answer", "validation"),
])
def test_an_example_fills_the_tab_and_runs_it(page, tab, example, result, expected):
    page.get_by_role("tab", name=tab).click()
    page.get_by_text(example, exact=True).first.click()
    target = page.locator(result).first
    for _ in range(600):
        text = target.input_value() if result.endswith("textarea") else target.inner_text()
        if text.strip() and (expected is None or expected in text):
            break
        page.wait_for_timeout(200)
    assert text.strip() and (expected is None or expected in text), text


def test_a_chat_example_is_sent_and_answered(page):
    page.get_by_role("tab", name="Chat").click()
    page.get_by_text("Write a haiku about autumn.", exact=True).first.click()
    for _ in range(600):
        if bot_text(page).strip() and not bot_text(page).startswith("Loading"):
            break
        page.wait_for_timeout(200)
    assert bot_text(page).strip()


def test_the_one_click_fine_tune_finishes_and_selects_its_adapter(page):
    """The quickstart button: sample loaded, run trained, base-vs-adapter table shown, adapter picked."""
    page.get_by_role("tab", name="Fine-tune").click()
    page.locator("#quickstart-sentiment").click()
    progress = page.locator("#ft-progress")
    for _ in range(1500):  # 5 minutes at most; about a minute on a quiet 2-core machine
        text = progress.inner_text()
        if "Finished" in text or "Failed" in text:
            break
        page.wait_for_timeout(200)
    status = page.locator("#quickstart-status").inner_text()  # follows the job apart from the tab's own view
    assert "Finished" in text and "try-sentiment" in text, f"progress: {text!r}; quickstart: {status!r}"
    assert "sentiment_en.csv" in page.locator("#ft-data-summary").inner_text()
    for _ in range(100):
        if page.locator("#adapter-picker input").input_value() == "try-sentiment":
            break
        page.wait_for_timeout(200)
    assert page.locator("#adapter-picker input").input_value() == "try-sentiment"
    metrics = page.locator("#ft-metrics").inner_text()
    assert "Base model vs adapter" in metrics and "accuracy" in metrics, metrics
    for _ in range(150):  # the status line follows on the next tick of the tab's timer
        if "selected" in page.locator("#quickstart-status").inner_text():
            break
        page.wait_for_timeout(200)
    assert "selected" in page.locator("#quickstart-status").inner_text()


def test_a_chinese_page_explains_its_boxes_and_errors_in_chinese(page):
    """A browser that asks for Chinese: the hints are Chinese, and an empty text gets a Chinese error."""
    context = page.context.browser.new_context(locale="zh-CN")
    zh = context.new_page()
    try:
        zh.goto(page.url)
        zh.get_by_role("tab", name="文本分类").click()
        zh.locator("#hint-classify-scores").wait_for()
        assert "概率" in zh.locator("#hint-classify-scores").inner_text()
        zh.locator("#classify-text textarea").fill("")
        zh.locator("#classify-run").click()
        zh.get_by_text("文本为空").first.wait_for(timeout=30000)
        assert zh.get_by_text("type or paste the text to classify").count() >= 1  # the English stays below
    finally:
        context.close()
