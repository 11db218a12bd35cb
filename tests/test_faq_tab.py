"""The FAQ tab, the ``/faq`` API (over HTTP with gradio_client), chat routing in the Chat tab, and
per-session uploads in a real browser.

    pytest tests/test_faq_tab.py -q                     # add -m "not browser" to skip Chromium
"""

from __future__ import annotations

import os

import gradio as gr
import pytest

from assistant.chat import Chat
from assistant.faq.knowledge_base import load_builtin
from assistant.tasks import faq
from assistant.ui import chat_tab, faq_tab
from assistant.ui.i18n import build_i18n
from tests.app_server import serving
from tests.chromium import ask_on_page, chromium, two_sessions, upload_on_page

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
IN_FAQ = "How do I stop my model from overfitting during fine-tuning?"


def build_demo(loaded, with_router: bool = True) -> gr.Blocks:
    kb = load_builtin()
    with gr.Blocks() as demo:
        with gr.Tab("Chat"):
            chat_tab.build_chat_tab(Chat(loaded), faq=faq.FaqRouter(kb) if with_router else None)
        with gr.Tab("FAQ"):
            faq_tab.build_faq_tab(loaded, kb)
    return demo


def event(demo: gr.Blocks, name: str):
    return next(fn for fn in demo.fns.values() if fn.name == name)


@pytest.fixture(scope="module")
def demo(tiny_loaded):
    return build_demo(tiny_loaded)


@pytest.fixture(scope="module")
def served(demo):
    with serving(demo, build_i18n(faq_tab.TRANSLATIONS)) as url:
        yield url


def test_translations_cover_both_languages():
    assert set(faq_tab.TRANSLATIONS["en"]) == set(faq_tab.TRANSLATIONS["zh"])
    assert all(key.startswith("faq.") for key in faq_tab.TRANSLATIONS["en"])
    build_i18n(faq_tab.TRANSLATIONS)


def test_events_queue_and_api_visibility(demo):
    for name in ("on_ask", "faq_api"):
        fns = [fn for fn in demo.fns.values() if fn.name == name]
        assert fns and all(fn.concurrency_id == "model" and fn.concurrency_limit == 1 for fn in fns), name
    # chat replies queue on their own, as many at once as the engine decodes together (transformers: one)
    fns = [fn for fn in demo.fns.values() if fn.name == "respond"]
    assert fns and all(fn.concurrency_id == "chat" and fn.concurrency_limit == 1 for fn in fns)
    public = {fn.api_name for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert public == {"chat", "faq"}


def test_upload_handler_returns_a_new_session_kb_or_a_clear_error(tmp_uploads):
    tmp_path = tmp_uploads
    default = load_builtin()
    assert faq_tab.upload_for_ui(None, "replace", default) == (default, faq_tab.status_line(default))
    good = tmp_path / "team.csv"
    good.write_text("question,answer\nWhere is the coffee machine?,Second floor.\n", "utf-8")
    kb, status = faq_tab.upload_for_ui(str(good), "extend", default)
    assert len(kb) == 62 and "built-in FAQ + team.csv" in status and "62 entries" in status
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nWhere?,\n", "utf-8")
    with pytest.raises(gr.Error, match=r"'bad.csv' row 1 \(line 2\): the answer"):
        faq_tab.upload_for_ui(str(bad), "replace", default)


@pytest.mark.real
def test_faq_api_over_http(served):
    from gradio_client import Client

    client = Client(served, verbose=False)
    result = client.predict(IN_FAQ, api_name="/faq")
    assert set(result) == {"answer", "sources"}
    assert result["sources"][0]["id"] == "faq-025"
    assert all(set(s) == {"id", "question", "score"} and isinstance(s["score"], float) for s in result["sources"])
    outside = client.predict("Will it rain in Shanghai tomorrow?", api_name="/faq")
    assert outside["sources"] == [] and outside["answer"].startswith(faq.NOT_COVERED["en"])
    with pytest.raises(Exception, match="empty question"):
        client.predict("  ", api_name="/faq")


@pytest.mark.real
def test_chat_routes_covered_questions_to_the_faq(demo):
    respond = event(demo, "respond").fn
    history = [{"role": "user", "content": "What is QLoRA?"}]
    replies = list(respond(history, "", 0.0, 0.9, 8, 1.0, True, False, None, None))  # FAQ on, agent mode off
    assert len(replies) == 1 and replies[0][:-1] == history
    assert "Sources: faq-034 (0." in replies[0][-1]["content"]
    generated = list(respond(history, "", 0.0, 0.9, 8, 1.0, False, False, None, None))  # checkbox off: the model answers
    assert generated and "Sources:" not in generated[-1][-1]["content"]
    chit_chat = list(respond([{"role": "user", "content": "hi, how are you?"}], "", 0.0, 0.9, 8, 1.0, True, False,
                             None, None))
    assert chit_chat and "Sources:" not in chit_chat[-1][-1]["content"]


def test_chat_tab_without_faq_keeps_its_inputs(tiny_loaded):
    demo = build_demo(tiny_loaded, with_router=False)
    respond = event(demo, "respond")
    use_faq = respond.inputs[6]
    assert isinstance(use_faq, gr.State) and use_faq.value is False, "without a router the FAQ is never used"
    assert not any(getattr(block, "elem_id", None) == "chat-use-faq" for block in demo.blocks.values())


@pytest.mark.browser
@pytest.mark.real
def test_an_upload_stays_in_its_browser_session_and_chat_cites_the_faq(served, tmp_path):
    upload = tmp_path / "office.md"
    upload.write_text("Q: Where is the coffee machine?\nA: On the second floor, next to the lifts.\n", "utf-8")
    with chromium() as browser:
        owner, other = two_sessions(browser, served, "#faq-status", tab="FAQ")
        upload_on_page(owner, "faq", upload, "office.md · 1 entries")

        assert "second floor" in ask_on_page(owner, "faq", "where can I find the coffee machine?")
        assert "built-in FAQ · 61 entries" in other.locator("#faq-status").inner_text()
        assert "second floor" not in ask_on_page(other, "faq", "where can I find the coffee machine?")

        other.get_by_role("tab", name="Chat").click()  # chat routing, through the real checkbox
        assert other.locator("#chat-use-faq input[type=checkbox]").is_checked()
        other.locator("#chat-input textarea").fill("What is QLoRA?")
        other.locator("#chat-send").click()
        other.locator("#chatbot", has_text="Sources: faq-034").wait_for(timeout=60_000)
