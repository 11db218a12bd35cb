"""A real browser against the running app: type, send, watch the reply stream in; call /chat."""

import time

import pytest

from tests.app_server import running_app

pytestmark = [pytest.mark.browser, pytest.mark.real]


@pytest.fixture(scope="module")
def app_url():
    with running_app() as url:
        yield url


def bot_text(page) -> str:
    bubbles = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']")
    return bubbles.last.inner_text() if bubbles.count() else ""


def test_send_a_message_and_see_it_stream(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.locator("#model-info").wait_for()
    info = page.locator("#model-info").inner_text()
    assert "engine llama.cpp" in info and "Q4_1 GGUF" in info
    page.locator("#chat-input textarea").fill("Write a long story about the sea.")  # a long reply: ~80 tokens/s
    page.locator("#chat-send").click()

    snapshots = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = bot_text(page)
        if text and not text.startswith("Loading") and (not snapshots or text != snapshots[-1]):
            snapshots.append(text)
        if len(snapshots) >= 3:
            break
        time.sleep(0.05)
    assert len(snapshots) >= 3, f"reply did not stream: {snapshots}"
    assert all(later.startswith(earlier.rstrip()) for earlier, later in zip(snapshots, snapshots[1:]))
    page.locator("#chat-stop").click()
    page.close()


def test_empty_message_shows_an_error_not_a_traceback(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.locator("#chat-send").click()
    toast = page.get_by_text("Type a message first")
    toast.first.wait_for(timeout=15000)
    assert "Traceback" not in page.content()
    page.close()


def test_chat_api_with_gradio_client(app_url):
    from gradio_client import Client

    client = Client(app_url, verbose=False)
    reply = client.predict(message="What is the capital of Japan?", temperature=0.0, max_new_tokens=16,
                           api_name="/chat")
    assert isinstance(reply, str) and "Tokyo" in reply


def test_agent_mode_shows_the_tool_call_as_a_step(app_url, browser):
    page = browser.new_page()
    page.goto(app_url)
    page.locator("#chat-input textarea").fill("Translate 'good morning' into German.")
    page.locator("#chat-send").click()
    page.get_by_text("Used tool: translate").first.wait_for(timeout=120_000)
    page.get_by_text("Translation:").first.wait_for(timeout=120_000)
    page.close()


def test_agent_answers_from_the_documents_this_session_uploaded_in_the_ask_tab(app_url, browser, tmp_path):
    doc = tmp_path / "office.md"
    doc.write_text("# Office\n## Coffee\nThe espresso machine stands on the fourth floor beside the library.\n", "utf-8")
    question = "According to my documents, where is the espresso machine?"
    owner, other = browser.new_page(), browser.new_page()
    try:
        for page in (owner, other):
            page.goto(app_url)
        owner.get_by_role("tab", name="Ask (FAQ & documents)").click()
        owner.locator("#docs-upload input[type=file]").set_input_files(str(doc))
        owner.locator("#docs-status", has_text="office.md: 1 passages").wait_for(timeout=60_000)
        owner.get_by_role("tab", name="Chat").click()
        owner.locator("#chat-input textarea").fill(question)
        owner.locator("#chat-send").click()
        owner.get_by_text("Used tool: docs").first.wait_for(timeout=120_000)
        owner.get_by_text("fourth floor").first.wait_for(timeout=60_000)
        assert "office.md" in bot_text(owner)  # the reply cites the uploaded file

        other.locator("#chat-input textarea").fill(question)  # another session: no uploads, no docs tool
        other.locator("#chat-send").click()
        other.wait_for_function("() => document.querySelectorAll('#chatbot .message.bot, #chatbot [data-testid=bot]')"
                                ".length > 0", timeout=120_000)
        time.sleep(1)
        assert "fourth floor" not in other.locator("#chatbot").inner_text()
        assert other.get_by_text("Used tool: docs").count() == 0
    finally:
        owner.close()
        other.close()
