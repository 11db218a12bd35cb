"""The agent's document-search tool: answers a chat message from the documents, citing the passages,
and tells the agent router when the documents cover a message well enough to route it there.

The documents are the operator's shared folder (``--docs-dir``) and, in the browser, the files the
session uploaded in the Ask tab: ``router.with_session(index)`` searches both.

    router = DocsRouter(shared_index)
    router.covers("How long must a client wait after wrong passwords?")   # -> True / False
    router.route("How long must a client wait after wrong passwords?")    # -> "...\\n\\nSources: manual.md (p. 3, 0.52)"
"""

from __future__ import annotations

from collections.abc import Sequence

from assistant.documents import answer as doc_answer
from assistant.documents.index import DocumentIndex
from assistant.documents.search_settings import DocSearchSettings
from assistant.core.language import chinese_or_english

ROUTE_MARGIN = 0.1
"""Chat routes a message without a cue to the documents only this far above the 'not covered' threshold:
chat is the fallback, so routing is stricter than the Ask tab."""
SOURCES_LABEL = {"en": "Sources", "zh": "来源"}


class DocsRouter:
    def __init__(self, indexes: DocumentIndex | Sequence[DocumentIndex], settings: DocSearchSettings | None = None):
        self.indexes = [indexes] if isinstance(indexes, DocumentIndex) else [i for i in indexes if i is not None]
        self.settings = settings or DocSearchSettings()

    @property
    def index(self) -> DocumentIndex:
        """The first collection (the operator's, when there is one)."""
        return self.indexes[0]

    def with_session(self, session: DocumentIndex | None) -> DocsRouter:
        """This router plus one browser session's uploads (itself when the session has none)."""
        if session is None or not len(session) or session in self.indexes:
            return self
        return DocsRouter([*self.indexes, session], self.settings)

    def covers(self, message: str) -> bool:
        message = (message or "").strip()
        if not message or len(message) > 2000:
            return False
        threshold = self.settings.threshold_for(chinese_or_english(message)) + ROUTE_MARGIN
        for index in self.indexes:
            hits = index.search(message, 1) if len(index) else []
            if hits and hits[0].score >= threshold:
                return True
        return False

    def route(self, message: str) -> str:
        """The answer (best passage) with its sources, or the documents' 'not covered' message, as Markdown for
        the chat: document text and file names are escaped, so an ``<img>`` in a document shows as text."""
        result = doc_answer.answer(message, self.indexes, settings=self.settings)
        shown = doc_answer.as_markdown_text
        if not result["sources"]:
            return shown(result["answer"])
        lang = chinese_or_english(message)
        cited = "; ".join(f"{shown(s['file'])}{' (' + shown(str(s['page'])) + ')' if s['page'] is not None else ''} "
                          f"{s['score']:.2f}" for s in result["sources"])
        return f"{shown(result['answer'])}\n\n{SOURCES_LABEL[lang]}: {cited}"


def docs_router_for(shared: DocsRouter | None, session: DocumentIndex | None) -> DocsRouter | None:
    """The router over the shared documents and a session's uploads; None when there are neither."""
    if shared is not None:
        return shared.with_session(session)
    if session is not None and len(session):
        return DocsRouter(session)
    return None
