"""Clickable examples (English and Chinese) for every tab: a click fills the inputs and runs the tab.

The texts are the project's own; the FAQ ones include the appendix questions of the seed document.
"""

from __future__ import annotations

import gradio as gr

CHAT = ["What is LoRA, in two sentences?", "Write a haiku about autumn.", "Give me three tips for a job interview.",
        "Translate 'good morning' into German.", "用一句话介绍一下大语言模型。", "把“今天天气很好”翻译成英文。"]
CLASSIFY = [["The food was cold and the waiter was rude.", "positive, negative"],
            ["An absolute delight from start to finish!", "positive, negative"],
            ["The central bank raised interest rates again.", "sports, finance, technology"],
            ["服务态度很好，下次还来。", "正面, 负面"], ["这款手机电池太不耐用了。", "正面, 负面"]]
NER = [["Angela Merkel met Tim Cook at Apple's office in Berlin.", "PER, ORG, LOC"],
       ["The United Nations held its climate summit in Paris, chaired by António Guterres.", "PER, ORG, LOC"],
       ["马云在杭州创办了阿里巴巴。", "PER, ORG, LOC"], ["李明昨天去了北京大学参加会议。", "PER, ORG, LOC"]]
TRANSLATE = [["Good morning! How are you today?", "en", "zh"], ["The house is small but very cozy.", "en", "de"],
             ["我喜欢在周末读书。", "zh", "en"], ["Fine-tuning adapts a pretrained model to a new task.", "en", "fr"]]
FAQ = ["How do I choose a suitable pretrained model?", "What should I do if the model overfits during fine-tuning?",
       "What should I pay attention to when deploying a large model?", "What is QLoRA?",
       "如何选择合适的预训练模型？", "微调过程中出现过拟合怎么办？", "大模型在部署时有哪些需要注意的地方？"]


def plain_headers(shown: gr.Examples, headers: list[str]) -> gr.Examples:
    """Column headers as plain text: Gradio shows the inputs' translated labels as raw i18n keys there."""
    shown.dataset.headers = headers
    return shown


def examples_that_run(examples: list, inputs: list, run, run_inputs: list, outputs, label: str,
                      queue_id: str, headers: list[str]) -> gr.Examples:
    """``gr.Examples`` whose click fills ``inputs`` and then runs ``run`` like the tab's button does."""
    shown = plain_headers(gr.Examples(examples=examples, inputs=inputs, label=label, examples_per_page=8), headers)
    shown.load_input_event.then(run, run_inputs, outputs, concurrency_id=queue_id, concurrency_limit=1,
                                api_visibility="private")
    return shown
