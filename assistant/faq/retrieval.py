"""Hybrid FAQ retrieval: MiniLM sentence embeddings + BM25, fused into one score in [0, 1].

Each entry is indexed once per language as "question + answer". For a query in language L:

    score = w_L * dense + (1 - w_L) * sparse
    dense  = max cosine(query, entry's embedded texts)              (all-MiniLM-L6-v2, mean pooled, L2)
    sparse = max over languages of BM25(query, entry) / bound(query) (BM25 "coverage" in [0, 1])

``bound(query) = sum over query terms of idf(term) * (k1 + 1)`` is the most BM25 can give any
document for that query, so ``sparse`` is the idf-weighted share of the query that an entry matches:
an absolute number that can be thresholded, unlike raw BM25. English is tokenised into lowercase
words (stop words dropped, a light suffix strip), Chinese into single characters plus bigrams.

Weights, measured on bench/data/faq_paraphrases.jsonl (see bench/faq_benchmark.py): MiniLM is
English-only: on Chinese paraphrases it ranks the right entry first 10% of the time (BM25: 62%) and
any mix of it lowers Chinese hit@1, so w_zh = 0 and Chinese texts are not embedded at all; in English
the 50/50 mix beats either part alone (hit@1 82% vs 72% dense, 61% BM25), so w_en = 0.5.

Thresholds, from the same paraphrase set. Below ``threshold`` (0.13) the FAQ "does not cover" the
question: it is the highest top-1 score of any out-of-scope paraphrase (en 0.09, zh 0.11) plus 0.02;
English correct top-1 scores start at 0.20, so English loses nothing, while Chinese scores overlap
(31% of Chinese paraphrases fall below it: 11 ranked right, 8 ranked wrong). ``route_threshold``
(0.35, chat routing) keeps chat routing precise: 93% of the English paraphrases it routes get the
right entry (89% at 0.30), 46% are routed; Chinese BM25 scores run lower, so Chinese chat messages
are routed only when they are close to an FAQ question. Only 5 + 5 out-of-scope questions exist: off-topic questions
that share a word with the FAQ ("Which laptop should I buy?" 0.14) can pass the threshold. Rerun the
benchmark and move both when the fusion or the data change.

    python -m assistant.faq.retrieval "how do I stop my model from overfitting during fine-tuning"
"""

from __future__ import annotations

import re
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch
from rank_bm25 import BM25Okapi

from assistant.memory import release_free_memory
from assistant.errors import InputError
from assistant.faq.embeddings import SentenceEncoder, default_encoder
from assistant.faq.knowledge_base import FaqEntry, KnowledgeBase, detect_language, load_builtin

_STOP_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "are", "was", "were", "be", "been",
    "being", "do", "does", "did", "i", "my", "me", "you", "your", "it", "its", "this", "that", "these", "those",
    "what", "which", "who", "how", "why", "when", "where", "can", "could", "should", "would", "will", "with",
    "by", "as", "at", "from", "about", "into", "than", "then", "so", "if", "not", "no", "there", "their",
    "they", "we", "our", "us", "any", "some"
})
_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+|[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
_CJK_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def tokenize(text: str) -> list[str]:
    """BM25 terms: English words (lowercased, stop words dropped, -s/-es/-ed/-ing stripped); Chinese
    characters plus adjacent-character bigrams (no word segmenter needed)."""
    terms = []
    for match in _TOKEN.finditer(text or ""):
        run = match.group()
        if _CJK_RUN.match(run):
            terms.extend(run)
            terms.extend(run[i:i + 2] for i in range(len(run) - 1))
        elif (word := run.lower()) not in _STOP_WORDS:
            terms.append(_strip_suffix(word))
    return terms


def _strip_suffix(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


@dataclass
class RetrievalSettings:
    """How entries are scored and when the FAQ counts as covering a question."""

    top_k: int = 3
    """Matches returned (and given to the model as context)."""
    dense_weight_en: float = 0.5
    """Share of the embedding similarity in the score of an English (non-Chinese) question."""
    dense_weight_zh: float = 0.0
    """Same for a Chinese question; 0 because MiniLM does not understand Chinese (see module doc)."""
    threshold: float = 0.13
    """Below this best score the answer is 'the FAQ does not cover this question'."""
    route_threshold: float = 0.35
    """The Chat tab answers from the FAQ only at or above this score (stricter: chat is the fallback)."""
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    question_repeats: int = 2
    """The question counts this many times in an entry's BM25 text (questions matter more than answers)."""

    def __post_init__(self):
        if not 1 <= int(self.top_k) <= 20:
            raise InputError(f"top_k must be between 1 and 20; got {self.top_k}.")
        for name in ("dense_weight_en", "dense_weight_zh", "threshold", "route_threshold"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise InputError(f"{name} must be between 0 and 1; got {getattr(self, name)}.")
        if self.route_threshold < self.threshold:
            raise InputError(f"route_threshold ({self.route_threshold}) must not be below threshold "
                             f"({self.threshold}): chat should route only what the FAQ covers.")
        if self.bm25_k1 <= 0 or not 0 <= self.bm25_b <= 1 or int(self.question_repeats) < 1:
            raise InputError("BM25 needs k1 > 0, 0 <= b <= 1 and question_repeats >= 1.")

    def dense_weight(self, lang: str) -> float:
        return self.dense_weight_zh if lang == "zh" else self.dense_weight_en


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
        dense_rows = [(i, f"{q} {a}") for lang, rows in by_lang.items() if s.dense_weight(lang) > 0
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
        weight = self.settings.dense_weight(detect_language(query))
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
        text = match.entry.in_language(detect_language(question))
        print(f"{match.score:.3f} (dense {match.dense:.3f}, bm25 {match.sparse:.3f})  {match.entry.id}  "
              f"{text.question}")
