"""The question / "phrase with the model" / Ask / answer row that the FAQ tab and the documents panel share.

    row = build_ask_row("faq", loaded, answer_height=120, hint_key="faq_answer")
    row.ask.click(on_ask, [row.question, kb, row.use_model], [row.answer, sources])

Labels come from the ``<prefix>.question``, ``.use_model``, ``.ask`` and ``.answer`` translations and the
element ids are ``<prefix>-question`` and so on, as the browser tests find them.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from assistant.ui.empty_states import hint
from assistant.ui.i18n import tr


@dataclass(frozen=True)
class AskRow:
    question: gr.Textbox
    use_model: gr.Checkbox  # only clickable when a chat model is loaded
    ask: gr.Button
    answer: gr.Markdown


def build_ask_row(prefix: str, loaded, *, answer_height: int, hint_key: str | None = None) -> AskRow:
    """Lay out the row in the current Blocks: the question column on the left, the answer on the right."""
    with gr.Row():
        with gr.Column(scale=3):
            question = gr.Textbox(label=tr(f"{prefix}.question"), lines=2, elem_id=f"{prefix}-question")
            use_model = gr.Checkbox(label=tr(f"{prefix}.use_model"), value=False, elem_id=f"{prefix}-use-model",
                                    interactive=loaded is not None)
            ask = gr.Button(tr(f"{prefix}.ask"), variant="primary", elem_id=f"{prefix}-ask")
        with gr.Column(scale=4):
            answer = gr.Markdown(label=tr(f"{prefix}.answer"), show_label=True, container=True,
                                 min_height=answer_height, elem_id=f"{prefix}-answer")
            if hint_key:
                hint(hint_key)
    return AskRow(question, use_model, ask, answer)
