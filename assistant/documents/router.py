"""The agent's document-search tool: answers a chat message from the operator's shared documents, citing
the passages, and tells the agent router when the documents cover a message well enough to route it there.

    router = DocsRouter(shared_index)
    router.covers("How long must a client wait after wrong passwords?")   # -> True / False
    router.route("How long must a client wait after wrong passwords?")    # -> "...\\n\\nSources: manual.md (p. 3, 0.52)"
"""

from __future__ import annotations

from assistant.documents import answer as doc_answer
from assistant.documents.index import DocumentIndex
from assistant.documents.search_settings import DocSearchSettings
from assistant.faq.knowledge_base import detect_language

ROUTE_MARGIN = 0.1
"""Chat routes a message without a cue to the documents only this far above the 'not covered' threshold:
chat is the fallback, so routing is stricter than the Ask tab."""
SOURCES_LABEL = {"en": "Sources", "zh": "来源"}


class DocsRouter:
    def __init__(self, index: DocumentIndex, settings: DocSearchSettings | None = None):
        self.index, self.settings = index, settings or DocSearchSettings()

    def covers(self, message: str) -> bool:
        message = (message or "").strip()
        if not message or not len(self.index) or len(message) > 2000:
            return False
        hits = self.index.search(message, 1)
        return bool(hits) and hits[0].score >= self.settings.threshold_for(detect_language(message)) + ROUTE_MARGIN

    def route(self, message: str, extra: list | None = None) -> str:
        """The answer (best passage) with its sources, or the documents' 'not covered' message."""
        result = doc_answer.answer(message, [self.index, *(extra or [])], settings=self.settings)
        if not result["sources"]:
            return result["answer"]
        lang = detect_language(message)
        cited = "; ".join(f"{s['file']}{' (' + str(s['page']) + ')' if s['page'] is not None else ''} {s['score']:.2f}"
                          for s in result["sources"])
        return f"{result['answer']}\n\n{SOURCES_LABEL[lang]}: {cited}"
