"""A new user's first clicks: each tab's example runs and shows a result (real browser, real models)."""

import pytest

from tests.app_server import running_app
from tests.test_browser_chat import CHROMIUM_ARGS, bot_text

pytestmark = [pytest.mark.browser, pytest.mark.real]


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    playwright = pytest.importorskip("playwright.sync_api")
    with running_app(env={"ASSISTANT_DATA_DIR": str(tmp_path_factory.mktemp("examples"))}) as url, \
            playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(url)
        yield page
        browser.close()


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
