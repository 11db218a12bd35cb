"""Assemble the tabs into one ``gr.Blocks`` app."""

from __future__ import annotations

import gradio as gr

from assistant.chat import ChatEngine
from assistant.ui.chat_tab import build_chat_tab

TITLE = "LLM Assistant Studio"


def build_app(engine: ChatEngine) -> gr.Blocks:
    """The whole UI; call ``.queue().launch()`` on the result."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\nChat, run NLP tasks and QLoRA fine-tune 4-bit models, offline.")
        with gr.Tab("Chat", id="chat"):
            build_chat_tab(engine)
    return demo
