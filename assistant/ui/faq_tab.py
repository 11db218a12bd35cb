"""The FAQ tab and the ``/faq`` API endpoint: widgets wired to ``assistant.tasks.faq``.

The active knowledge base lives in this browser session's ``gr.State``: an upload replaces or
extends the built-in FAQ for that session only. The ``/faq`` API always answers from ``kb_default``.

    with gr.Blocks() as demo:
        kb_state = build_faq_tab(loaded, load_builtin())
"""

from __future__ import annotations

import gradio as gr
import pandas as pd

from assistant.ui import examples
from assistant.ui.examples import examples_that_run
from assistant.ui.user_errors import shown, shows_user_errors
from assistant.arguments import bool_arg, text_arg
from assistant.core.errors import InputError
from assistant.faq.knowledge_base import KnowledgeBase, UploadLimits, load_upload
from assistant.faq.retrieval import RetrievalSettings, get_index
from assistant.core.loading import LoadedModel
from assistant.tasks import faq
from assistant.ui.chat_tab import MODEL_QUEUE
from assistant.ui.i18n import tr
from assistant.ui.ask_row import build_ask_row
from assistant.ui.uploads import uploaded_file

SOURCE_COLUMNS = ["id", "question", "score"]
UPLOAD_TYPES = [".csv", ".tsv", ".jsonl", ".md", ".markdown", ".txt"]

TRANSLATIONS = {
    "en": {
        "faq.examples": "Examples (click one to run it)",
        "faq.tab": "Ask (FAQ & documents)",
        "faq.intro": "Ask a question about LLMs and fine-tuning. The answer comes from the FAQ knowledge base "
                     "(English or Chinese); when the FAQ does not cover a question, it says so instead of guessing.",
        "faq.question": "Question",
        "faq.use_model": "Phrase the answer with the model (grounded only in the retrieved FAQ entries)",
        "faq.ask": "Ask",
        "faq.answer": "Answer",
        "faq.sources": "Sources (retrieved FAQ entries)",
        "faq.upload": "Your own FAQ: CSV / TSV / JSONL with question and answer columns, or Markdown "
                      "('Q:' / 'A:' lines or '## question' headings). Max 5 MB. Remove the file to go back.",
        "faq.mode": "Your FAQ should",
        "faq.mode_replace": "Replace the built-in FAQ",
        "faq.mode_extend": "Extend the built-in FAQ",
    },
    "zh": {
        "faq.examples": "示例（点击即可运行）",
        "faq.tab": "问答（FAQ 与文档）",
        "faq.intro": "就大模型和微调提问。答案来自常见问题知识库（中文或英文）；"
                     "知识库没有涵盖的问题会如实说明，不会瞎猜。",
        "faq.question": "问题",
        "faq.use_model": "用模型组织答案（只依据检索到的问答条目）",
        "faq.ask": "提问",
        "faq.answer": "答案",
        "faq.sources": "来源（检索到的问答条目）",
        "faq.upload": "上传自己的问答库：含 question / answer 列的 CSV / TSV / JSONL，或 Markdown"
                      "（“Q:” / “A:” 行，或“## 问题”标题）。最大 5 MB。移除文件即恢复内置问答库。",
        "faq.mode": "上传的问答库将",
        "faq.mode_replace": "替换内置问答库",
        "faq.mode_extend": "补充到内置问答库",
    },
}


def status_line(kb: KnowledgeBase) -> str:
    """Which knowledge base answers, in both languages."""
    return f"**Active FAQ / 当前问答库:** {kb.name} · {len(kb)} entries / {len(kb)} 条"


def source_table(sources: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[s["id"], s["question"], s["score"]] for s in sources], columns=SOURCE_COLUMNS)


@shows_user_errors
def ask_for_ui(question: str, kb: KnowledgeBase, loaded: LoadedModel | None, use_model: bool,
               settings: RetrievalSettings | None = None) -> tuple[str, pd.DataFrame]:
    """(answer Markdown, sources table); bad input becomes ``gr.Error``."""
    result = faq.answer(question, kb, loaded, bool(use_model), settings)
    return result["answer"], source_table(result["sources"])


@shows_user_errors
def upload_for_ui(path: str | None, mode: str, kb_default: KnowledgeBase, limits: UploadLimits | None = None,
                  settings: RetrievalSettings | None = None) -> tuple[KnowledgeBase, str]:
    """(new session knowledge base, status line): the upload replacing or extending ``kb_default``, indexed
    now so problems show at upload time. No file: ``kb_default``. Bad files become ``gr.Error``."""
    if not path:
        return kb_default, status_line(kb_default)
    kb = load_upload(uploaded_file(path), kb_default, mode, limits)
    get_index(kb, settings)  # embed now: the first question is then one encoder pass
    return kb, status_line(kb)


def build_faq_tab(loaded: LoadedModel | None, kb_default: KnowledgeBase, settings: RetrievalSettings | None = None,
                  limits: UploadLimits | None = None) -> gr.State:
    """Lay out the FAQ tab inside the current ``gr.Blocks``; register ``/faq``. Returns the session's
    knowledge-base state (so other tabs could read the session's FAQ)."""
    settings, limits = settings or RetrievalSettings(), limits or UploadLimits()
    kb_state = gr.State(kb_default)
    gr.Markdown(tr("faq.intro"))
    status = gr.Markdown(status_line(kb_default), elem_id="faq-status")
    row = build_ask_row("faq", loaded, answer_height=120, hint_key="faq_answer")
    question, use_model, ask, answer = row.question, row.use_model, row.ask, row.answer
    sources = gr.Dataframe(source_table([]), headers=SOURCE_COLUMNS, datatype=["str", "str", "number"],
                           interactive=False, label=tr("faq.sources"), elem_id="faq-sources", wrap=True)
    with gr.Row():
        upload = gr.File(label=tr("faq.upload"), file_types=UPLOAD_TYPES, elem_id="faq-upload", scale=3)
        mode = gr.Radio([(tr("faq.mode_replace"), "replace"), (tr("faq.mode_extend"), "extend")],
                        value="replace", label=tr("faq.mode"), elem_id="faq-mode", scale=2)

    def on_ask(question_value, kb, use_model_value):
        if use_model_value and loaded is None:
            raise shown(InputError.keyed("answer.no_model"))
        return ask_for_ui(question_value, kb, loaded, use_model_value, settings)

    def on_upload(path, mode_value):
        return upload_for_ui(path, mode_value, kb_default, limits, settings)

    for trigger in (ask.click, question.submit):
        trigger(on_ask, [question, kb_state, use_model], [answer, sources], concurrency_id=MODEL_QUEUE,
                concurrency_limit=1, api_visibility="private")
    examples_that_run([[q] for q in examples.FAQ], [question], on_ask, [question, kb_state, use_model],
                      [answer, sources], tr("faq.examples"), MODEL_QUEUE, ["Question / 问题"])
    for trigger in (upload.upload, mode.change):
        trigger(on_upload, [upload, mode], [kb_state, status], api_visibility="private")
    upload.clear(lambda: (kb_default, status_line(kb_default)), None, [kb_state, status], api_visibility="private")

    @shows_user_errors
    def faq_api(question: str, use_model: bool = False) -> dict:
        """Answer from the built-in FAQ: {"answer": str, "sources": [{"id", "question", "score"}]}."""
        question, use_model = text_arg(question, "question"), bool_arg(use_model, "use_model")
        if use_model and loaded is None:
            raise InputError("No chat model is loaded: call /faq with use_model=false.")
        return faq.answer(question, kb_default, loaded, use_model, settings)

    gr.api(faq_api, api_name="faq", concurrency_id=MODEL_QUEUE, concurrency_limit=1)
    return kb_state
