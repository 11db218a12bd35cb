"""Hybrid FAQ retrieval: MiniLM sentence embeddings + BM25, fused into one score in [0, 1].

Each entry is indexed once per language as "question + answer". For a query in language L:

    score = w_L * dense + (1 - w_L) * sparse
    dense  = max cosine(query, entry's embedded texts)              (all-MiniLM-L6-v2, mean pooled, L2)
    sparse = max over languages of BM25(query, entry) / bound(query) (BM25 "coverage" in [0, 1])

``bound(query) = sum over query terms of idf(term) * (k1 + 1)`` is the most BM25 can give any
document for that query, so ``sparse`` is the idf-weighted share of the query that an entry matches:
an absolute number that can be thresholded, unlike raw BM25. English is tokenised into lowercase
words (stop words dropped, a light suffix strip), Chinese into jieba words (``assistant.search_terms``).

Cross-lingual: an entry is scored by the best of its languages, so a Chinese question finds a bilingual
entry through its Chinese side (and through the English side on shared terms such as LoRA, BERT, NF4)
and an English question through its English side; the answer is then given in the question's language.

Weights, chosen with bench/faq_benchmark.py on bench/data/faq_paraphrases.jsonl and the tune split of
bench/data/faq_paraphrases_zh.jsonl (the figures: bench/README.md, "FAQ retrieval"): in English an even
mix of dense and sparse beats either part alone. MiniLM is an English encoder, so only English texts are
embedded; a Chinese question is embedded too and compared with them: alone that rarely ranks the right
entry first, but Chinese questions often carry English terms (LoRA, self-attention, perplexity), so a
small dense weight for Chinese (``w_zh``) still lifts the hit rate over BM25 alone.

Thresholds. Below ``threshold`` (English questions) the FAQ "does not cover" the question: set just
above the highest top-1 score of any English out-of-scope paraphrase, below every correct English top-1.
Chinese questions have their own, ``threshold_zh``: jieba words make off-topic Chinese questions share
common words with the FAQ (数据, 训练), so their scores run higher. ``route_threshold`` (chat routing) is
higher still, so that what chat answers from the FAQ is nearly always the right entry. Only a few
out-of-scope questions exist: off-topic questions that share words with the FAQ can pass the threshold.
Rerun the benchmark and move the thresholds when the fusion or the data change.

    python -m assistant.faq.retrieval "how do I stop my model from overfitting during fine-tuning"
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from rank_bm25 import BM25Okapi

from assistant.core.memory import release_free_memory
from assistant.search_terms import terms
from assistant.core.errors import InputError
from assistant.faq.embeddings import SentenceEncoder, default_encoder
from assistant.faq.knowledge_base import FaqEntry, KnowledgeBase, load_builtin
from assistant.core.language import chinese_or_english
from assistant.search_settings import HybridSearchSettings

def tokenize(text: str) -> list[str]:
    """BM25 terms: English words (lowercased, stop words dropped, suffixes stripped), Chinese jieba words."""
    return terms(text)


@dataclass
class RetrievalSettings(HybridSearchSettings):
    """How FAQ entries are scored and when the FAQ counts as covering a question (defaults: see module doc)."""

    route_threshold: float = 0.35
    """The Chat tab answers from the FAQ only at or above this score (stricter: chat is the fallback)."""
    question_repeats: int = 2
    """The question counts this many times in an entry's BM25 text (questions matter more than answers)."""

    def __post_init__(self):
        super().__post_init__()
        if self.route_threshold < max(self.threshold, self.threshold_zh):
            raise InputError(f"route_threshold ({self.route_threshold}) must not be below threshold "
                             f"({max(self.threshold, self.threshold_zh)}): chat should route only what the FAQ covers.")
        if int(self.question_repeats) < 1:
            raise InputError("question_repeats must be at least 1.")

    def _shares(self) -> tuple[str, ...]:
        return ("route_threshold",)


@dataclass(frozen=True)
class Match:
    entry: FaqEntry
    score: float
    dense: float
    sparse: float


class FaqIndex:
    """Embeddings and BM25 statistics of one knowledge base; ``search`` costs one encoder pass."""

    def __init__(self, kb: KnowledgeBase, encoder: SentenceEncoder | None = None,
                 settings: RetrievalSettings | None = None):
        self.kb, self.settings = kb, settings or RetrievalSettings()
        self._encoder = encoder
        # Entries' texts by language: (entry index, "question + answer").
        by_lang: dict[str, list[tuple[int, str, str]]] = {}
        for index, entry in enumerate(kb.entries):
            for text in entry.texts:
                by_lang.setdefault(text.lang, []).append((index, text.question, text.answer))
        s = self.settings
        self._bm25 = {
            lang: ([i for i, _, _ in rows], BM25Okapi(
                [tokenize(" ".join([q] * s.question_repeats) + " " + a) for _, q, a in rows], k1=s.bm25_k1, b=s.bm25_b))
            for lang, rows in by_lang.items()
        }
        # Only English texts are embedded (MiniLM is an English encoder), for questions in either language:
        # a Chinese question's English terms (LoRA, perplexity, self-attention) find the English side.
        embedded = max(s.dense_weight_en, s.dense_weight_zh) > 0
        dense_rows = [(i, f"{q} {a}") for lang, rows in by_lang.items() if embedded and lang != "zh"
                      for i, q, a in rows]
        self._dense_owner = torch.tensor([i for i, _ in dense_rows], dtype=torch.long)
        self._dense = self.encoder.encode([t for _, t in dense_rows]) if dense_rows else None

    @property
    def encoder(self) -> SentenceEncoder:
        if self._encoder is None:
            self._encoder = default_encoder()
        return self._encoder

    def dense_scores(self, query: str) -> torch.Tensor:
        """Per entry: the best cosine similarity between the query and the entry's embedded texts (0 if none)."""
        scores = torch.zeros(len(self.kb))
        if self._dense is not None:
            similarity = (self._dense @ self.encoder.encode([query])[0]).clamp(min=0)
            scores.scatter_reduce_(0, self._dense_owner, similarity, reduce="amax")
        return scores

    def sparse_scores(self, query: str) -> torch.Tensor:
        """Per entry: BM25 divided by the query's upper bound, best over the entry's languages."""
        terms = tokenize(query)
        scores = torch.zeros(len(self.kb))
        for owners, bm25 in self._bm25.values():
            unseen_idf = max(bm25.idf.values(), default=1.0)
            bound = sum(bm25.idf.get(t, unseen_idf) for t in terms) * (self.settings.bm25_k1 + 1)
            if bound > 0:
                values = torch.tensor(bm25.get_scores(terms) / bound, dtype=torch.float32).clamp(0, 1)
                scores.scatter_reduce_(0, torch.tensor(owners), values, reduce="amax")
        return scores

    def search(self, query: str, k: int | None = None) -> list[Match]:
        """The ``k`` best entries for ``query`` (best first), with their fused scores."""
        query = (query or "").strip()
        if not query:
            raise InputError("Type a question first: an empty question cannot be looked up.")
        weight = self.settings.dense_weight(chinese_or_english(query))
        dense = self.dense_scores(query) if weight > 0 else torch.zeros(len(self.kb))
        sparse = self.sparse_scores(query) if weight < 1 else torch.zeros(len(self.kb))
        fused = weight * dense + (1 - weight) * sparse
        top = fused.topk(min(k or self.settings.top_k, len(self.kb)))
        return [Match(self.kb.entries[i], round(float(fused[i]), 4), float(dense[i]), float(sparse[i]))
                for i in top.indices.tolist()]


_CACHE: OrderedDict[tuple, FaqIndex] = OrderedDict()
_CACHE_LOCK = threading.Lock()
_BUILD_LOCK = threading.Lock()  # one build at a time: a second caller of the same index waits, then reuses it
_CACHE_SIZE = 8


def _cached(key: tuple) -> FaqIndex | None:
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
        return _CACHE.get(key)


def get_index(kb: KnowledgeBase, settings: RetrievalSettings | None = None,
              encoder: SentenceEncoder | None = None) -> FaqIndex:
    """The index of ``kb``, built once per content hash and settings (so sessions with the same FAQ share it)."""
    settings = settings or RetrievalSettings()
    key = (kb.content_hash, repr(settings), id(encoder) if encoder else None)
    if (index := _cached(key)) is not None:
        return index
    with _BUILD_LOCK:
        if (index := _cached(key)) is not None:
            return index
        index = FaqIndex(kb, encoder, settings)
        release_free_memory()  # the encoder's activations for every entry, freed but kept by the C heap
        with _CACHE_LOCK:
            _CACHE[key] = index
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return index


if __name__ == "__main__":
    question = " ".join(sys.argv[1:]) or "how do I stop my model from overfitting during fine-tuning"
    for match in get_index(load_builtin()).search(question, 5):
        text = match.entry.in_language(chinese_or_english(question))
        print(f"{match.score:.3f} (dense {match.dense:.3f}, bm25 {match.sparse:.3f})  {match.entry.id}  "
              f"{text.question}")
