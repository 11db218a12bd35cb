"""A browser tab that closes mid-reply frees the model: the Chat tab served by Gradio on the embedded SmolLM2 GGUF,
driven through Gradio's queue protocol (what the page does), then left mid-stream.

The conversation primes a loop (an assistant turn of 200 "la"), so greedy decoding runs to max new tokens (1024)
unless it is stopped: far longer than the bound below, even on a fast machine.

    pytest tests/test_chat_disconnect.py -q -m real
"""

from __future__ import annotations

import json
import time
import uuid

import gradio as gr
import httpx
import pytest

from tests.app_server import serving

pytestmark = pytest.mark.real
RELEASED_WITHIN = 10.0


@pytest.fixture(scope="module")
def chat_app():
    from assistant.chat import Chat
    from assistant.core.loading import load_served_model
    from assistant.ui import chat_tab

    loaded = load_served_model("smollm2-135m-instruct")
    with gr.Blocks() as demo:
        chat_tab.build_chat_tab(Chat(loaded))
    with serving(demo) as url:
        yield url.rstrip("/"), demo, loaded


def model_busy(loaded) -> bool:
    """Whether the llama.cpp engine's batch holds a request (running or waiting)."""
    return loaded.engine.scheduler.busy() > 0


def respond_index(demo: gr.Blocks) -> int:
    """The queue's fn_index of the Chat tab's streaming ``respond`` event (the first of them)."""
    names = [fn.name for fn in demo.fns.values()]
    return names.index("respond")


def test_closing_the_page_mid_reply_frees_the_model(chat_app):
    url, demo, loaded = chat_app
    turns = [("user", "Sing la, as long as you can."), ("assistant", " ".join(["la"] * 200)),
             ("user", "Again, longer.")]
    history = [{"role": role, "content": [{"type": "text", "text": text}]} for role, text in turns]  # as the page sends
    session = uuid.uuid4().hex
    data = [history, "You are a helpful assistant.", 0.0, 0.9, 1024, 1.0, None, None, None, None]
    joined = httpx.post(f"{url}/gradio_api/queue/join", timeout=30,
                        json={"data": data, "fn_index": respond_index(demo), "session_hash": session})
    assert joined.status_code == 200, joined.text
    generating = 0
    with httpx.stream("GET", f"{url}/gradio_api/queue/data", params={"session_hash": session}, timeout=600) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                assert message.get("msg") != "process_completed", message  # ended before the tab closed
                generating += message.get("msg") == "process_generating"
                if generating == 4:
                    assert model_busy(loaded)  # the reply is still being generated
                    break
    # The event stream is closed, as when the tab closes.
    deadline = time.monotonic() + RELEASED_WITHIN
    while model_busy(loaded) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not model_busy(loaded), "the closed tab's reply is still in the batch"
