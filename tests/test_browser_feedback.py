"""In a browser: rate a Chat reply down, write a better answer, and find it in the Feedback view (Adapters tab);
the same app rates a reply through the ``/feedback`` endpoint with gradio_client. Tiny model, so it stays fast.
Run ``pytest tests/test_browser_feedback.py -q``."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.app_server import serving

pytestmark = [pytest.mark.browser]


@pytest.fixture
def app(tmp_path, tiny_loaded):
    from assistant.chat import Chat
    from assistant.feedback.ratings import Feedback
    from assistant.feedback.store import FeedbackStore
    from assistant.ui.app_ui import Services, build_app, i18n
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager

    feedback = Feedback(FeedbackStore(tmp_path / "data"))
    services = Services(Chat(tiny_loaded), jobs=JobManager(tmp_path / "data"),
                        store=AdapterStore(tmp_path / "data" / "adapters"), feedback=feedback, served_reference="tiny")
    with serving(build_app(services), i18n()) as url:
        yield url, feedback
    services.jobs.close()


def test_rate_write_a_better_answer_and_see_it_in_the_feedback_view(app, browser):
    url, feedback = app
    page = browser.new_page()
    page.goto(url)
    page.locator("#chat-input textarea").fill("What is LoRA?")
    page.locator("#chat-send").click()
    deadline = time.monotonic() + 30
    while feedback.responses.newest() is None and time.monotonic() < deadline:  # the reply has ended
        time.sleep(0.1)
    dislike = page.locator("#chatbot button[aria-label='Dislike']").last
    dislike.wait_for(timeout=20000)
    dislike.click()
    page.locator("#chat-better-answer textarea").wait_for(timeout=10000)
    page.locator("#chat-better-answer textarea").fill("LoRA trains two small low-rank matrices per layer.")
    page.locator("#chat-better-save").click()
    page.get_by_text("the better answer is stored").wait_for(timeout=10000)
    [stored] = feedback.store.read().ratings
    assert stored["rating"] == "down" and stored["better_answer"].startswith("LoRA trains")

    page.get_by_role("tab", name="Adapters").click()
    expect(page.locator("#fb-table")).to_contain_text("LoRA trains two small", timeout=10000)
    expect(page.locator("#fb-summary")).to_contain_text("1 ratings: 0 up, 1 down (1 with a better answer)")


def test_the_feedback_endpoint_refuses_ids_it_never_produced(app):
    from gradio_client import Client

    url, _ = app
    client = Client(url, verbose=False)
    with pytest.raises(Exception, match="was produced by this server recently"):
        client.predict("chatcmpl-" + "0" * 24, "up", "", api_name="/feedback")
