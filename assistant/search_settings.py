"""The knobs of a hybrid search (MiniLM cosine + BM25 coverage, fused into one score in [0, 1]) and when its
best score counts as covering a question: one dataclass for the FAQ and the documents, checked on creation.

    RetrievalSettings()      # the FAQ's measured values (assistant.faq.retrieval)
    DocSearchSettings()      # the documents' (assistant.documents.search_settings)

Each subclass keeps its own defaults, measured on its own benchmark (the module docs there say how).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from assistant.core.errors import InputError


@dataclass
class HybridSearchSettings:
    top_k: int = 3
    """Results returned (and given to the model as context)."""
    dense_weight_en: float = 0.5
    """Share of the MiniLM cosine in the score of an English (non-Chinese) question (the rest is BM25 coverage)."""
    dense_weight_zh: float = 0.3
    """The same for a Chinese question, compared with the English texts only (Chinese ones by BM25)."""
    threshold: float = 0.13
    """Below this best score (English question) the texts do not cover the question."""
    threshold_zh: float = 0.15
    """The same for a Chinese question (BM25 coverage of off-topic Chinese questions runs higher)."""
    bm25_k1: float = 1.5
    bm25_b: float = 0.75

    def __post_init__(self):
        if not 1 <= int(self.top_k) <= 20:
            raise InputError(f"top_k must be between 1 and 20; got {self.top_k}.")
        for name in ("dense_weight_en", "dense_weight_zh", "threshold", "threshold_zh", *self._shares()):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise InputError(f"{name} must be between 0 and 1; got {getattr(self, name)}.")
        if self.bm25_k1 <= 0 or not 0 <= self.bm25_b <= 1:
            raise InputError("BM25 needs k1 > 0 and 0 <= b <= 1.")

    def _shares(self) -> tuple[str, ...]:
        """Further fields of a subclass that must lie between 0 and 1."""
        return ()

    def dense_weight(self, lang: str) -> float:
        return self.dense_weight_zh if lang == "zh" else self.dense_weight_en

    def ablations(self) -> dict:
        """This search and its two halves alone, for the benchmarks' tables: embeddings only, BM25 only."""
        return {"embeddings only": replace(self, dense_weight_en=1.0, dense_weight_zh=1.0),
                "BM25 only": replace(self, dense_weight_en=0.0, dense_weight_zh=0.0), "hybrid (app)": self}

    def threshold_for(self, lang: str) -> float:
        """The 'not covered' threshold for a question in ``lang``."""
        return self.threshold_zh if lang == "zh" else self.threshold
