"""Rating replies: the Chat tab's thumbs count only for replies the same session got (a forged history or another
session is refused), and ``/v1`` replies are rated by their id through ``POST /v1/feedback``.
Run ``pytest tests/test_chat_feedback.py -q``."""

from __future__ import annotations

import httpx
import pytest

from assistant.core.errors import InputError
from assistant.feedback.ratings import Feedback
from assistant.feedback.store import FeedbackStore
from assistant.ui.chat_feedback import rate_liked
from tests.openai_server import serving_api


def _chat(feedback, session):
    """A chat as the browser holds it (a tool step included) after the server produced its two replies."""
    first = [{"role": "user", "content": "Translate hello"}]
    feedback.responses.remember(session, [{"role": "system", "content": "Be brief."}, *first], "Bonjour", "tiny",
                                "fr-v1", "tool")
    second = [*first, {"role": "assistant", "content": "Bonjour"}, {"role": "user", "content": "And bye?"}]
    feedback.responses.remember(session, second, "Au revoir", "tiny", None)
    return [first[0], {"role": "assistant", "content": "**input**", "metadata": {"title": "Used tool: translate"}},
            {"role": "assistant", "content": [{"type": "text", "text": "Bonjour"}]}, second[-1],
            {"role": "assistant", "content": "Au revoir"}]


def test_thumbs_rate_the_sessions_own_replies_and_a_second_click_withdraws(tmp_path):
    feedback = Feedback(FeedbackStore(tmp_path))
    history = _chat(feedback, "session:a")
    assert rate_liked(feedback, "session:a", history, 2, True)[0] is None
    pending, note = rate_liked(feedback, "session:a", history, 4, False)
    assert pending is not None and "rated down" in note
    feedback.correct(pending, "Goodbye in French is 'au revoir'.", session="session:a")
    stored = {r["reply"]: r for r in feedback.store.read().ratings}
    assert stored["Bonjour"]["rating"] == "up" and stored["Bonjour"]["adapter"] == "fr-v1"
    assert stored["Bonjour"]["source"] == "tool"
    assert stored["Au revoir"]["better_answer"] == "Goodbye in French is 'au revoir'."
    assert stored["Au revoir"]["conversation"][-1] == {"role": "user", "content": "And bye?"}
    rate_liked(feedback, "session:a", history, 2, "")  # the same thumb clicked again
    assert [r["reply"] for r in feedback.store.read().ratings] == ["Au revoir"]


def test_forged_histories_other_sessions_and_user_messages_are_refused(tmp_path):
    feedback = Feedback(FeedbackStore(tmp_path))
    history = _chat(feedback, "session:a")
    with pytest.raises(InputError, match="not produced in this session"):
        rate_liked(feedback, "session:b", history, 4, True)  # another (or a forged) session id
    edited = [*history[:4], {"role": "assistant", "content": "Something it never said"}]
    with pytest.raises(InputError, match="not produced in this session"):
        rate_liked(feedback, "session:a", edited, 4, False)
    other_turns = [{"role": "user", "content": "Something else"}, *history[1:]]
    with pytest.raises(InputError, match="not produced in this session"):
        rate_liked(feedback, "session:a", other_turns, 4, True)
    with pytest.raises(InputError, match="Only the assistant's replies"):
        rate_liked(feedback, "session:a", history, 3, True)
    with pytest.raises(InputError, match="not in this chat"):
        rate_liked(feedback, "session:a", history, 99, True)
    assert feedback.store.read().ratings == []


def test_v1_replies_are_rated_by_their_id(tmp_path, tiny_loaded):
    feedback = Feedback(FeedbackStore(tmp_path))
    body = {"model": "served-model", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 4,
            "temperature": 0}
    with serving_api(tiny_loaded, feedback=feedback) as url:
        reply = httpx.post(f"{url}/chat/completions", json=body, timeout=60).json()
        rated = httpx.post(f"{url}/feedback", json={"id": reply["id"], "rating": "down", "better_answer": "Hi!"})
        assert rated.status_code == 200 and rated.json()["rating"] == "down"
        with httpx.stream("POST", f"{url}/chat/completions", json={**body, "stream": True}, timeout=60) as stream:
            lines = [line for line in stream.iter_lines() if line.startswith("data: {")]
        streamed_id = lines[0].split('"id": "')[1].split('"')[0]
        assert httpx.post(f"{url}/feedback", json={"id": streamed_id, "rating": "up"}).status_code == 200
        unknown = httpx.post(f"{url}/feedback", json={"id": "chatcmpl-" + "0" * 24, "rating": "up"})
        assert unknown.status_code == 404 and "was produced by this server" in unknown.json()["error"]["message"]
        bad = httpx.post(f"{url}/feedback", json={"id": reply["id"], "rating": "meh"})
        assert bad.status_code == 400 and "'up' or 'down'" in bad.json()["error"]["message"]
        huge = httpx.post(f"{url}/feedback", json={"id": reply["id"], "rating": "down", "better_answer": "x" * 1_000_000})
        assert huge.status_code == 400 and "limit is 20,000" in huge.json()["error"]["message"]
    stored = {r["id"]: r for r in feedback.store.read().ratings}
    assert stored[reply["id"]]["better_answer"] == "Hi!" and stored[reply["id"]]["model"] == "served-model"
    assert stored[reply["id"]]["reply"] == reply["choices"][0]["message"]["content"]
    assert stored[streamed_id]["rating"] == "up" and stored[streamed_id]["session"] == "v1"
    assert stored[reply["id"]]["conversation"] == [{"role": "user", "content": "Hello"}]


def test_the_chat_tab_remembers_each_reply_so_its_thumb_counts(tmp_path, tiny_loaded):
    import gradio as gr

    from assistant.chat import Chat
    from assistant.ui.chat_tab import build_chat_tab

    feedback = Feedback(FeedbackStore(tmp_path))
    with gr.Blocks() as demo:
        build_chat_tab(Chat(tiny_loaded), feedback=feedback)
    respond = next(fn for fn in demo.fns.values() if fn.name == "respond").fn
    history = [{"role": "user", "content": "Hello"}]
    for _ in range(2):  # two turns: the second reply comes after the first
        history = list(respond(history, "Be brief.", 0.0, 0.9, 6, 1.0, False, False, None, None))[-1]
        history = [*history, {"role": "user", "content": "And then?"}]
    history = history[:-1]
    pending, _ = rate_liked(feedback, "", history, 3, False)
    [stored] = feedback.store.read().ratings
    assert stored["id"] == pending and stored["conversation"][0] == {"role": "system", "content": "Be brief."}
    assert [m["content"] for m in stored["conversation"][1:]] == ["Hello", history[1]["content"].strip(), "And then?"]
    public = {fn.api_name: fn for fn in demo.fns.values() if fn.api_visibility == "public"}
    assert set(public) == {"chat", "feedback"} and public["feedback"].concurrency_id != "model"
    assert next(fn for fn in demo.fns.values() if fn.name == "on_like").api_visibility == "private"


def test_a_finished_feedback_run_opens_chats_compare_with_its_adapter(tmp_path, tiny_loaded):
    import gradio as gr

    from assistant.chat import Chat
    from assistant.ui.app_ui import Services, build_app
    from finetune.adapters import AdapterStore
    from finetune.jobs import JobManager

    services = Services(Chat(tiny_loaded), jobs=JobManager(tmp_path / "data"),
                        store=AdapterStore(tmp_path / "data" / "adapters"),
                        feedback=Feedback(FeedbackStore(tmp_path / "data")))
    try:
        demo = build_app(services)
    finally:
        services.jobs.close()
    [opening] = [fn for fn in demo.fns.values() if any(isinstance(block, gr.Tabs) for block in fn.outputs)]
    tabs, accordion, right = opening.fn("feedback-kto-1205")
    assert tabs.selected == "chat" and accordion.open is True and right.value == "feedback-kto-1205"
    assert [block.elem_id for block in opening.outputs] == ["main-tabs", "compare", "compare-right"]
