"""Answer a question from document passages: retrieve over the session's and the operator's indexes,
then give the best passage as written, or (``use_model``) have the chat model phrase an answer from the
retrieved passages only, checked the way the FAQ checks it (a reply whose terms are not in the question
or the passages is replaced by the best passage, with a note). Every answer lists its sources.

The answer is plain text taken from the documents (or phrased from them); where it is shown as Markdown,
pass it through ``as_markdown_text`` so that what a document holds shows as text: an ``<img src=...>``
or ``![](https://...)`` in a document would otherwise be rendered and fetched by the reader's browser.

    python -m assistant.documents.answer manual.pdf "How do I reset the password?"
"""

from __future__ import annotations

import html
import re
import sys
from collections.abc import Sequence

from assistant.documents.index import DocumentIndex, Hit, search_all
from assistant.documents.search_settings import DocSearchSettings
from assistant.core.errors import InputError
from assistant.core.language import chinese_or_english
from assistant.search_terms import terms
from assistant.tasks.faq import CONTEXT_SCORE_RATIO, GROUNDING_MIN, check_question
from assistant.tasks.faq import phrase_with_model as faq_phrase_with_model

SYSTEM_PROMPT = (
    "You answer questions using only the document passages given to you. If the passages do not answer the "
    "question, say that the documents do not cover it. Do not add facts that are not in the passages. "
    "Reply in the language of the question, in a few sentences."
)
NOT_COVERED = {
    "en": "Your documents do not cover this question, so I will not guess an answer. Rephrase it, or add a "
          "document that answers it.",
    "zh": "你的文档没有涵盖这个问题，所以我不会凭空编造答案。请换个说法，或上传能回答它的文档。",
}
NO_DOCUMENTS = {
    "en": "No documents to search yet: upload PDF, TXT, Markdown, HTML or DOCX files first.",
    "zh": "还没有可检索的文档：请先上传 PDF、TXT、Markdown、HTML 或 DOCX 文件。",
}
STRAYED_NOTE = {
    "en": "(The model's wording strayed from the documents, so the best passage is shown as written.)",
    "zh": "（模型的表述偏离了文档内容，因此直接显示最相关的原文段落。）",
}

MARKDOWN_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=])")
"""Characters that make Markdown structure (links, images, emphasis, headings, lists, tables, code)."""
WEB_ADDRESS = re.compile(r"(?:https?|ftp)://[^\s<>]*", re.IGNORECASE)
"""Addresses that Gradio's Markdown (GitHub flavour) turns into links as written, backslashes included."""
LINK_SYNTAX = re.compile(r"([\[\]!])")


def as_markdown_text(text: str) -> str:
    """``text`` escaped so that Markdown (and the HTML Markdown allows) shows it as written: HTML tags and
    entities stay literal, and no image, link, heading, list, table or code block is made from it. A web
    address stays a plain link to itself: only the characters that could open an image or a link inside it
    are escaped, since the renderer shows an address's backslashes."""
    pieces, last = [], 0
    for address in WEB_ADDRESS.finditer(text):
        pieces.append(MARKDOWN_SYNTAX.sub(r"\\\1", html.escape(text[last:address.start()], quote=False)))
        pieces.append(LINK_SYNTAX.sub(r"\\\1", html.escape(address.group(), quote=False)))
        last = address.end()
    pieces.append(MARKDOWN_SYNTAX.sub(r"\\\1", html.escape(text[last:], quote=False)))
    return "".join(pieces)


def source(hit: Hit) -> dict:
    """{"file", "page", "text", "score"}: ``page`` is the page number (PDF), else the section heading
    ("Install > On Windows"), else None."""
    page = hit.passage.page if hit.passage.page is not None else (hit.passage.heading or None)
    return {"file": hit.passage.file, "page": page, "text": hit.passage.text, "score": round(hit.score, 3)}


def retrieve(question: str, indexes: Sequence[DocumentIndex | None], settings: DocSearchSettings | None = None) -> list[Hit]:
    """The top-k passages at or above the threshold for the question's language (empty: not covered)."""
    settings = settings or DocSearchSettings()
    hits = search_all([i for i in indexes if i is not None], question, settings.top_k)
    return [h for h in hits if h.score >= settings.threshold_for(chinese_or_english(question))]


def build_messages(question: str, hits: Sequence[Hit]) -> list[dict]:
    blocks = [f"Passage {n} ({h.passage.file}{', ' + h.passage.where if h.passage.where else ''}):\n{h.passage.text}"
              for n, h in enumerate(hits, start=1)]
    user = "\n\n".join(blocks) + f"\n\nUsing only the passages above, answer this question: {question}"
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def phrase_with_model(loaded, question: str, hits: Sequence[Hit]) -> str:
    """The model's answer from ``hits``; the weakest passages are dropped if the prompt is too long."""
    return faq_phrase_with_model(loaded, question, hits, build=build_messages)


def grounded_share(reply: str, question: str, hits: Sequence[Hit]) -> float:
    """Share of the reply's terms that occur in the question or the passages given."""
    reply_terms = terms(reply)
    if not reply_terms:
        return 0.0
    known = set(terms(question))
    for hit in hits:
        known.update(terms(hit.passage.searchable))
    return sum(t in known for t in reply_terms) / len(reply_terms)


def answer(question: str, indexes: Sequence[DocumentIndex | None], loaded=None, use_model: bool = False,
           settings: DocSearchSettings | None = None) -> dict:
    """{"answer": str, "sources": [{"file", "page", "text", "score"}]}; sources empty when not covered."""
    question = check_question(question)
    lang = chinese_or_english(question)
    if not any(index is not None and len(index) for index in indexes):
        return {"answer": NO_DOCUMENTS[lang], "sources": []}
    hits = retrieve(question, indexes, settings)
    if not hits:
        return {"answer": NOT_COVERED[lang], "sources": []}
    text = hits[0].passage.text
    if use_model:
        if loaded is None:
            raise InputError("'Phrase with the model' needs a loaded chat model; none was given.")
        hits = [h for h in hits if h.score >= CONTEXT_SCORE_RATIO * hits[0].score]
        phrased = phrase_with_model(loaded, question, hits)
        if grounded_share(phrased, question, hits) >= GROUNDING_MIN and len(phrased) >= 20:
            text = phrased
        else:
            text = f"{text}\n\n{STRAYED_NOTE[lang]}"
    return {"answer": text, "sources": [source(h) for h in hits]}


if __name__ == "__main__":
    *files, asked = sys.argv[1:] or ["README.md", "How do I run the tests?"]
    index = DocumentIndex.in_memory()
    for file in files:
        index.add_file(file)
    result = answer(asked, [index])
    print(result["answer"])
    for s in result["sources"]:
        print(f"  {s['score']:.3f} {s['file']} [{s['page']}] {s['text'][:100]}")
