"""How document passages are scored and when the documents count as covering a question.

The numbers are measured with ``python bench/docs_benchmark.py --sweep`` on the dev split of
bench/data/docs_questions.jsonl (the test split is only reported; see bench/README.md). Every dense weight
from 0.3 to 0.7 ranks the dev questions the same (en 100%, zh 90%), so the choice came from the generated
100-page PDF, where a part name is one page's fact among near-identical filler: 0.7 finds the right page
for 13 of 20, 0.5 19, 0.4 19, 0.3 and BM25 alone 20; w_en = 0.4 keeps some of the paraphrase tolerance
of the embeddings. w_zh = 0.3 (Chinese questions against English passages only, as in the FAQ) lowers the
top score of off-topic Chinese questions (0.32 -> 0.22); right answers stay above them (lowest 0.33).
Thresholds (BM25 with Lucene's idf), chosen on dev: off-topic questions that borrow the documents' own
words ("How do I connect the studio to a PostgreSQL database?") score as high as some right answers, so
no threshold separates them all. en: the lowest value that rejects as many dev off-topic questions as any
value keeping every right dev answer, leaving room below the lowest right answer for paraphrases; zh: the
dev split does not tell apart values from the highest off-topic score to the lowest right one, so it sits
midway. An off-topic question that shares several words with a document can still pass.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.errors import InputError


@dataclass
class DocSearchSettings:
    top_k: int = 3
    """Passages returned (and given to the model as context)."""
    dense_weight_en: float = 0.4
    """Share of the MiniLM cosine in the score of an English question (the rest is BM25 coverage)."""
    dense_weight_zh: float = 0.3
    """The same for a Chinese question (compared with English passages only; Chinese ones by BM25)."""
    threshold: float = 0.35
    """Below this best score (English question) the documents do not cover the question."""
    threshold_zh: float = 0.28
    """The same for a Chinese question."""
    dense_candidates: int = 64
    """Passages the vector search returns per question; the rest get cosine 0 in the fusion."""
    bm25_k1: float = 1.5
    bm25_b: float = 0.75

    def __post_init__(self):
        if not 1 <= int(self.top_k) <= 20:
            raise InputError(f"top_k must be between 1 and 20; got {self.top_k}.")
        for name in ("dense_weight_en", "dense_weight_zh", "threshold", "threshold_zh"):
            if not 0.0 <= float(getattr(self, name)) <= 1.0:
                raise InputError(f"{name} must be between 0 and 1; got {getattr(self, name)}.")
        if int(self.dense_candidates) < 1 or self.bm25_k1 <= 0 or not 0 <= self.bm25_b <= 1:
            raise InputError("dense_candidates must be >= 1, bm25_k1 > 0 and 0 <= bm25_b <= 1.")

    def dense_weight(self, lang: str) -> float:
        return self.dense_weight_zh if lang == "zh" else self.dense_weight_en

    def threshold_for(self, lang: str) -> float:
        return self.threshold_zh if lang == "zh" else self.threshold
