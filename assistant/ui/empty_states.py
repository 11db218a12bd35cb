"""What each output box says before the first run (English and Chinese), so an empty page explains itself.

    output = gr.Textbox(placeholder=placeholder("translate_output"), ...)   # boxes that take a placeholder
    hint("classify_scores")                                                # a muted line under the others

Gradio's Label, JSON, HighlightedText, File and Dataframe have no placeholder, so those get a hint line
just below them; Textbox and Chatbot get a real placeholder. Keys are ``empty.<name>`` in ``TRANSLATIONS``
(merged into the app's i18n). Tests: ``pytest tests/test_empty_states.py -q``.
"""

from __future__ import annotations

import gradio as gr

from assistant.ui.i18n import tr

TRANSLATIONS = {
    "en": {
        "empty.classify_scores": "↑ The probability of each label appears here after **Classify** (or a click on an "
                                 "example below).",
        "empty.classify_download": "↑ After **Classify the file**: a CSV with each row's predicted label and scores.",
        "empty.ner_highlighted": "↑ Your text with each entity highlighted by type appears here after **Find "
                                 "entities**.",
        "empty.ner_json": "↑ The entities as JSON (text, type, start and end offsets).",
        "empty.translate_output": "The translation appears here. Type a text on the left and press Translate, "
                                  "or click an example below.",
        "empty.translate_detected": "The detected source language (when Source is auto)",
        "empty.translate_download": "↑ After **Translate the file**: the translated .txt, one line per input line.",
        "empty.faq_answer": "↑ The answer from the FAQ appears here after **Ask**; below it the FAQ entries it came "
                            "from, with their scores.",
        "empty.ft_data": "Upload a file or pick a sample: its format, task, columns and a validation report "
                         "(every problem with its row number) appear here.",
        "empty.ft_log": "The training log (each step's loss, validation loss, the equivalent CLI command) appears "
                        "here once a run starts.",
        "empty.ft_metrics": "When a run finishes, the base model and the new adapter are evaluated on the "
                            "validation split and compared in a table here.",
        "empty.adapters": "Adapters you train appear in this table (with their key metric against the base "
                          "model). None yet? Use the one-click run on the Fine-tune tab.",
    },
    "zh": {
        "empty.classify_scores": "↑ 点击**分类**（或下方的示例）后，这里显示每个标签的概率。",
        "empty.classify_download": "↑ 点击**对文件分类**后：每行的预测标签和分数（CSV）。",
        "empty.ner_highlighted": "↑ 点击**识别实体**后，这里显示按类型高亮实体的文本。",
        "empty.ner_json": "↑ JSON 格式的实体（文本、类型、起止位置）。",
        "empty.translate_output": "译文显示在这里。在左侧输入文本后点击翻译，或点击下方的示例。",
        "empty.translate_detected": "检测到的源语言（源语言为 auto 时）",
        "empty.translate_download": "↑ 点击**翻译文件**后：翻译好的 .txt，每行对应一行输入。",
        "empty.faq_answer": "↑ 点击**提问**后，这里显示 FAQ 的答案；下方是答案所依据的条目及其得分。",
        "empty.ft_data": "上传文件或选择示例后，这里显示其格式、任务、列和校验报告（每个问题及其行号）。",
        "empty.ft_log": "开始训练后，这里显示训练日志（每步损失、验证损失、等价的命令行）。",
        "empty.ft_metrics": "训练结束后，会在验证集上评估基础模型和新适配器，并在这里用表格对比。",
        "empty.adapters": "训练好的适配器会列在这个表格中（含相对基础模型的关键指标）。还没有？试试微调页上的一键训练。",
    },
}
CHAT_PLACEHOLDER = ("**Replies appear here.** Type a message below or click an example.<br>"
                    "回复会显示在这里：在下方输入消息，或点击一个示例。")


def placeholder(name: str):
    """The translated placeholder text for a Textbox output."""
    return tr(f"empty.{name}")


def hint(name: str) -> gr.Markdown:
    """A muted line under an output that has no placeholder of its own."""
    return gr.Markdown(tr(f"empty.{name}"), elem_id=f"hint-{name.replace('_', '-')}", elem_classes=["output-hint"])
