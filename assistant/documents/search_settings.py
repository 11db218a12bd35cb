"""How document passages are scored and when the documents count as covering a question.

Chosen with ``python bench/docs_benchmark.py --sweep`` on the dev split of bench/data/docs_questions.jsonl
(the test split is only reported; the figures are in bench/README.md, "Document QA"). Every dense weight
in the swept range ranks the dev questions the same, so w_en came from the generated 100-page PDF, where a
part name is one page's fact among near-identical filler and more embedding weight finds fewer right pages;
0.4 keeps some of the embeddings' tolerance of paraphrases. w_zh = 0.3 (Chinese questions against English
passages only, as in the FAQ) lowers the top score of off-topic Chinese questions more than of right ones.
Thresholds (BM25 with Lucene's idf): off-topic questions that borrow the documents' own words ("How do I
connect the studio to a PostgreSQL database?") score as high as some right answers, so no threshold
separates them all. en: the lowest value that rejects as many dev off-topic questions as any value keeping
every right dev answer, leaving room below the lowest right answer for paraphrases; zh: the dev split does
not tell apart the values between the highest off-topic score and the lowest right one, so it sits there.
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
