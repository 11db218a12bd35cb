"""Rating in Chat: thumbs up / down on every reply (Gradio's chatbot feedback, the ``.like`` event), a box to write
a better answer after a thumbs-down, and the ``/feedback`` API endpoint that rates a reply by its id.

    build_chat_feedback(chatbot, feedback)      # inside the Chat tab; feedback: assistant.feedback.ratings.Feedback

    from gradio_client import Client
    Client("http://127.0.0.1:7860/").predict("chatcmpl-...", "down", "A better answer.", api_name="/feedback")

A thumb counts only for a reply this server produced for the same session (the login name with ``--auth``,
else the browser session): the reply and the turns before it must match one the session was sent, so a
forged chat history or another session's id is refused. Clicking the same thumb again withdraws the rating.
Tests: ``pytest tests/test_chat_feedback.py -q``; in a browser: ``tests/test_browser_feedback.py``.
"""

from __future__ import annotations

import gradio as gr

from assistant.arguments import text_arg
from assistant.chat import message_text
from assistant.core.errors import InputError
from assistant.ui.i18n import tr
from assistant.ui.user_errors import shows_user_errors

TRANSLATIONS = {
    "en": {"chatfb.better": "Write a better answer (optional): what should the reply have said?",
           "chatfb.save": "Save the better answer", "chatfb.skip": "No thanks"},
    "zh": {"chatfb.better": "写一个更好的回答（可选）：这条回复应该怎么说？", "chatfb.save": "保存更好的回答",
           "chatfb.skip": "不用了"},
}


API_SESSION = "v1"
"""The owner of the replies /v1 produced: the only ones the API may rate (a Chat reply's id never leaves the server)."""


def session_of(request: gr.Request | None) -> str:
    """Who a rating belongs to: the login name with ``--auth``, else the browser session."""
    if request is None:
        return ""
    user = getattr(request, "username", None)
    return f"user:{user}" if user else f"session:{getattr(request, 'session_hash', '') or ''}"


def rate_liked(feedback, session: str, history: list, index, liked) -> tuple[str | None, str]:
    """Store the thumb on ``history[index]``; (the reply's id when a better answer may follow, a note)."""
    if isinstance(index, (list, tuple)):
        index = index[0]
    if not isinstance(index, int) or not isinstance(history, list) or not 0 <= index < len(history):
        raise InputError("That message is not in this chat: rate a reply shown above.")
    message = history[index]
    if not isinstance(message, dict) or message.get("role") != "assistant":
        raise InputError("Only the assistant's replies can be rated.")
    produced = feedback.responses.find(session, history[:index], message_text(message.get("content")))
    if produced is None:
        raise InputError.keyed("feedback.not_this_session")
    if liked is True:
        feedback.rate(produced.id, "up", session=session)
        return None, "👍 Saved: this reply is rated up."
    if liked is False:
        feedback.rate(produced.id, "down", session=session)
        return produced.id, "👎 Saved: this reply is rated down. A better answer below helps training most."
    feedback.clear(produced.id, session=session)
    return None, "Rating withdrawn."


def build_chat_feedback(chatbot: gr.Chatbot, feedback) -> None:
    """Wire the thumbs of ``chatbot``, the better-answer box and ``/feedback`` (inside the current Blocks)."""
    pending = gr.State(None)  # the id of the reply just rated down, for its better answer
    with gr.Column(visible=False, elem_id="chat-better") as box:
        better = gr.Textbox(label=tr("chatfb.better"), lines=3, max_lines=12, elem_id="chat-better-answer")
        with gr.Row():
            save = gr.Button(tr("chatfb.save"), variant="primary", elem_id="chat-better-save")
            skip = gr.Button(tr("chatfb.skip"), elem_id="chat-better-skip")
    note = gr.Markdown(elem_id="chat-feedback-note")

    @shows_user_errors
    def on_like(history, data: gr.LikeData, request: gr.Request):
        response_id, message = rate_liked(feedback, session_of(request), history, data.index, data.liked)
        return response_id, gr.update(visible=response_id is not None), "", message

    @shows_user_errors
    def on_save(response_id, text, request: gr.Request):
        if not response_id:
            raise InputError.keyed("feedback.rate_down_first")
        feedback.correct(response_id, text, session=session_of(request))
        return None, gr.update(visible=False), "", "✍️ Saved: the better answer is stored with the thumbs-down."

    outputs = [pending, box, better, note]
    chatbot.like(on_like, chatbot, outputs, api_visibility="private", show_progress="hidden")
    save.click(on_save, [pending, better], outputs, api_visibility="private")
    skip.click(lambda: (None, gr.update(visible=False), "", ""), None, outputs, api_visibility="private")

    @shows_user_errors
    def rate(response_id: str, rating: str, better_answer: str = "") -> dict:
        """Rate a reply this server produced, by its id (the ``id`` of a /v1 chat completion): ``rating`` up or
        down, ``better_answer`` optional (with down). Returns the stored rating's id, rating and time."""
        stored = feedback.rate(text_arg(response_id, "response_id"), rating, better_answer, session=API_SESSION)
        return {"id": stored["id"], "rating": stored["rating"], "better_answer": stored["better_answer"],
                "time": stored["time"]}

    gr.api(rate, api_name="feedback")
