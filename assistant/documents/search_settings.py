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

from assistant.core.errors import InputError
from assistant.search_settings import HybridSearchSettings


@dataclass
class DocSearchSettings(HybridSearchSettings):
    # The documents' own measured values (module doc); the fields are described in HybridSearchSettings.
    dense_weight_en: float = 0.4
    threshold: float = 0.35
    threshold_zh: float = 0.28
    dense_candidates: int = 64
    """Passages the vector search returns per question; the rest get cosine 0 in the fusion."""

    def __post_init__(self):
        super().__post_init__()
        if int(self.dense_candidates) < 1:
            raise InputError("dense_candidates must be >= 1.")
