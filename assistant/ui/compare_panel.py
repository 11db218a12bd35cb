"""Side by side: one prompt to two targets (the base model or any generative adapter), the answers next
to each other, to see what fine-tuning changed. Greedy decoding, so a difference is the adapter's.

Built inside the Chat tab by ``build_compare_panel(chat)``; it runs on the shared model queue.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from assistant.chat import Chat, GenerationSettings
from assistant.ui.adapter_choice import BASE_MODEL_CHOICE, picked_adapter, picker_choices
from assistant.ui.i18n import tr
from assistant.ui.user_errors import shows_user_errors

TRANSLATIONS = {
    "en": {"compare.title": "Compare side by side (base vs adapter, or two adapters)", "compare.left": "Left",
           "compare.right": "Right", "compare.prompt": "Prompt for both", "compare.run": "Compare",
           "compare.empty": "The answer appears here."},
    "zh": {"compare.title": "并排对比（基础模型与适配器，或两个适配器）", "compare.left": "左侧", "compare.right": "右侧",
           "compare.prompt": "两侧共用的提示", "compare.run": "对比", "compare.empty": "回答会显示在这里。"},
}


def compare(chat: Chat, prompt: str, targets: list[str | None], max_new_tokens: int = 256):
    """Yield the list of answers as each target finishes (greedy; a target is an adapter name, None the base)."""
    settings = GenerationSettings(temperature=0.0, max_new_tokens=max_new_tokens)
    answers = [""] * len(targets)
    for index, adapter in enumerate(targets):
        answers[index] = chat.reply(prompt, [], "", settings, adapter=adapter)
        yield list(answers)


@dataclass
class ComparePanel:
    accordion: gr.Accordion
    right: gr.Dropdown
    adapters: object = None

    def show(self, adapter: str):
        """Updates for (accordion, right) that open the panel with ``adapter`` on the right (the base on the left)."""
        return gr.Accordion(open=True), gr.Dropdown(choices=picker_choices(self.adapters), value=adapter)


def build_compare_panel(chat: Chat, queue_id: str) -> ComparePanel:
    adapters = chat.adapters

    def choices():
        return picker_choices(adapters)

    names = choices()
    with gr.Accordion(tr("compare.title"), open=False, elem_id="compare") as accordion:
        with gr.Row():
            left = gr.Dropdown(names, value=BASE_MODEL_CHOICE, label=tr("compare.left"), elem_id="compare-left")
            right = gr.Dropdown(names, value=names[-1], label=tr("compare.right"), elem_id="compare-right")
        prompt = gr.Textbox(label=tr("compare.prompt"), lines=2, elem_id="compare-prompt")
        run = gr.Button(tr("compare.run"), elem_id="compare-run")
        with gr.Row():
            left_answer = gr.Textbox(label=tr("compare.left"), placeholder=tr("compare.empty"), lines=6,
                                     interactive=False, elem_id="compare-left-answer")
            right_answer = gr.Textbox(label=tr("compare.right"), placeholder=tr("compare.empty"), lines=6,
                                      interactive=False, elem_id="compare-right-answer")

    @shows_user_errors
    def on_run(text, a, b):
        for answers in compare(chat, text, [picked_adapter(a), picked_adapter(b)]):
            yield answers[0], answers[1]

    for dropdown in (left, right):
        dropdown.focus(lambda current: gr.Dropdown(choices=choices(), value=current), dropdown, dropdown,
                       api_visibility="private")
    run.click(on_run, [prompt, left, right], [left_answer, right_answer], concurrency_id=queue_id,
              concurrency_limit=1, api_visibility="private")
    return ComparePanel(accordion, right, adapters)
