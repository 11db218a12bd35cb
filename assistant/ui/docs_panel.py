"""The documents part of the Ask tab and the ``/docs_ask`` API: upload files into this browser session's
own collection, ask, get an answer with its sources.

Each session's collection is an in-memory Qdrant index held in that session's ``gr.State`` (created at its
first upload, closed when the session ends), so no session can see another's documents; the operator's
folder (``--docs-dir``) is one shared index that every session searches too. ``/docs_ask`` indexes the
files it is given for that call only.

    with gr.Blocks() as demo:
        build_docs_panel(loaded, operator_index, DocumentLimits())
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from assistant.arguments import bool_arg, text_arg
from assistant.documents import answer as doc_answer
from assistant.documents.index import DocumentIndex
from assistant.documents.readers import TYPES, DocumentLimits
from assistant.core.errors import InputError, UserError
from assistant.ui.ask_row import build_ask_row
from assistant.ui.chat_tab import MODEL_QUEUE
from assistant.ui.i18n import tr
from assistant.ui.uploads import uploaded_file
from assistant.ui.user_errors import shows_user_errors

SOURCE_COLUMNS = ["file", "page / section", "passage", "score"]
MAX_SESSION_FILES = 20
MAX_API_FILES = 10

TRANSLATIONS = {
    "en": {"docs.title": "Your documents", "docs.intro": "Upload PDF, TXT, Markdown, HTML or DOCX files and ask "
           "questions about them. Answers come only from your documents, with the passages they are taken from. "
           "Your files are visible to your browser session only.",
           "docs.upload": "Documents (PDF, TXT, MD, HTML, DOCX)", "docs.question": "Question about your documents",
           "docs.use_model": "Phrase the answer with the model (grounded only in the retrieved passages)",
           "docs.ask": "Ask the documents", "docs.answer": "Answer", "docs.sources": "Sources (retrieved passages)"},
    "zh": {"docs.title": "你的文档", "docs.intro": "上传 PDF、TXT、Markdown、HTML 或 DOCX 文件，然后就其内容提问。"
           "答案只来自你的文档，并附上出处段落。你的文件只在你自己的浏览器会话中可见。",
           "docs.upload": "文档（PDF、TXT、MD、HTML、DOCX）", "docs.question": "关于文档的问题",
           "docs.use_model": "用模型组织答案（只依据检索到的段落）", "docs.ask": "向文档提问", "docs.answer": "答案",
           "docs.sources": "来源（检索到的段落）"},
}


def source_table(sources: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[s["file"], "" if s["page"] is None else str(s["page"]), s["text"], s["score"]]
                         for s in sources], columns=SOURCE_COLUMNS)


def _shown_name(item) -> str:
    """The name a person knows an upload by (a FileData's original name, else the file's own name)."""
    if isinstance(item, dict) and item.get("orig_name"):
        return str(item["orig_name"])
    path = item.get("path") if isinstance(item, dict) else getattr(item, "name", item)
    return Path(path).name if isinstance(path, str) and path else "file"


def add_files(index: DocumentIndex, files: list, limits: DocumentLimits | None = None,
              kept: set | None = None) -> list[str]:
    """Index each file; one line per file: what was indexed, or why a file was not (the others still are).
    ``kept`` (optional) collects the content hashes of the files now in the index."""
    report = []
    for item in files or []:
        name = _shown_name(item)
        try:
            path = uploaded_file(item, name)
            if len(index.files()) >= MAX_SESSION_FILES:
                raise InputError(f"'{name}' was not added: a session holds at most {MAX_SESSION_FILES} documents. "
                                 "Remove some (clear the upload) and try again.")
            added = index.add_file(path, name, limits)
        except UserError as exc:
            report.append(f"⚠ {exc}")
            continue
        except OSError as exc:
            report.append(f"⚠ '{name}' could not be read ({exc.strerror or type(exc).__name__}): upload it again.")
            continue
        if kept is not None:
            kept.add(added.file_hash)
        note = " (already indexed)" if added.already_indexed else ""
        report.append(f"✓ {name}: {added.passages} passages{note}")
    return report


def status(index: DocumentIndex | None, operator: DocumentIndex | None, report: list[str]) -> str:
    names = sorted((index.files() if index is not None else {}).values())
    lines = [f"**Your documents / 你的文档:** {', '.join(names) if names else '(none)'}"]
    if operator is not None and len(operator):
        lines.append(f"**Shared documents / 共享文档:** {len(operator.files())} files, {len(operator)} passages")
    return "\n\n".join(lines + report)


def ask_documents(question: str, indexes: list, loaded, use_model: bool) -> dict:
    question, use_model = text_arg(question, "question"), bool_arg(use_model, "use_model")
    if use_model and loaded is None:
        raise InputError.keyed("answer.no_model")
    return doc_answer.answer(question, indexes, loaded, use_model)


def docs_ask(files: list, question: str, loaded, operator: DocumentIndex | None, limits: DocumentLimits | None,
             use_model: bool = False, encoder=None) -> dict:
    """The ``/docs_ask`` endpoint: index ``files`` for this call only, answer from them (and the operator's
    folder). Files that cannot be read are listed in ``problems``; the others are still used."""
    question = text_arg(question, "question")
    if files is not None and not isinstance(files, (list, tuple)):
        files = [files]
    if len(files or []) > MAX_API_FILES:
        raise InputError(f"'files' holds {len(files)} files; /docs_ask takes at most {MAX_API_FILES} per call.")
    index = DocumentIndex.in_memory(encoder=encoder) if files else None
    try:
        report = add_files(index, files, limits) if index is not None else []
        result = ask_documents(question, [index, operator], loaded, use_model)
    finally:
        if index is not None:
            index.close()
    problems = [line[2:] for line in report if line.startswith("⚠")]
    return {**result, "problems": problems} if problems else result


def session_state() -> gr.State:
    """A browser session's uploaded ``DocumentIndex`` (None until the first upload), closed when the session
    ends. Made before the tabs so that Chat's agent can search the uploads of the Ask tab too."""
    return gr.State(None, delete_callback=lambda index: index.close() if index is not None else None)


def build_docs_panel(loaded, operator: DocumentIndex | None = None, limits: DocumentLimits | None = None,
                     session: gr.State | None = None) -> gr.State:
    """Lay out the documents panel in the current Blocks and register ``/docs_ask``; returns the session's
    index state (``session``, or a new ``session_state()``)."""
    session = session if session is not None else session_state()
    gr.Markdown(f"### {tr('docs.title')}\n{tr('docs.intro')}")
    upload = gr.File(label=tr("docs.upload"), file_count="multiple", file_types=sorted(TYPES), elem_id="docs-upload")
    state_line = gr.Markdown(status(None, operator, []), elem_id="docs-status")
    row = build_ask_row("docs", loaded, answer_height=100)
    question, use_model, ask, answer_box = row.question, row.use_model, row.ask, row.answer
    sources = gr.Dataframe(source_table([]), headers=SOURCE_COLUMNS, datatype=["str", "str", "str", "number"],
                           interactive=False, label=tr("docs.sources"), elem_id="docs-sources", wrap=True)

    def on_upload(files, index):
        index = index if index is not None else DocumentIndex.in_memory()
        kept: set = set()
        report = add_files(index, files or [], limits, kept)
        for content_hash in set(index.files()) - kept:  # a file taken out of the upload box leaves the index
            index.delete_file(content_hash)
        return index, status(index, operator, report)

    def on_clear(index):
        if index is not None:
            index.close()
        return None, status(None, operator, [])

    @shows_user_errors
    def on_ask(question_value, index, use_model_value):
        result = ask_documents(question_value, [index, operator], loaded, use_model_value)
        return doc_answer.as_markdown_text(result["answer"]), source_table(result["sources"])  # document text as text

    upload.upload(on_upload, [upload, session], [session, state_line], api_visibility="private")
    upload.clear(on_clear, session, [session, state_line], api_visibility="private")
    for trigger in (ask.click, question.submit):
        trigger(on_ask, [question, session, use_model], [answer_box, sources], concurrency_id=MODEL_QUEUE,
                concurrency_limit=1, api_visibility="private")

    @shows_user_errors
    def docs_ask_api(files, question, use_model=False) -> dict:  # parameter names are the API's (README)
        """Answer from the given files (and the operator's folder): {"answer": str, "sources": [{"file", "page",
        "text", "score"}]}, plus "problems" (one message per file that could not be read) when there are any."""
        return docs_ask(files, question, loaded, operator, limits, use_model)

    with gr.Group(visible=False):  # the endpoint's inputs: gradio_client uploads handle_file(...) items first
        api_files = gr.File(label="files", file_count="multiple", type="filepath")
        api_question, api_use_model = gr.Textbox(label="question"), gr.Checkbox(label="use_model", value=False)
        api_result, api_trigger = gr.JSON(), gr.Button()
    api_trigger.click(docs_ask_api, [api_files, api_question, api_use_model], api_result, api_name="docs_ask",
                      api_visibility="public", concurrency_id=MODEL_QUEUE, concurrency_limit=1)
    return session
