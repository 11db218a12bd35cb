"""FAQ retrieval benchmark: hit@1 / hit@3 on held-out paraphrases, per language, for embeddings only,
BM25 only and the hybrid the app uses; plus out-of-scope rejection at the app's threshold.

    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py                 # markdown table on stdout
    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py --threads 1      # gentler on a shared machine

Data: bench/data/faq_paraphrases.jsonl (faq_id, lang, question; faq_id null = out of scope),
asked against the built-in FAQ. Each method scores on its own scale, so rejection is shown for every
method at the app's threshold (meaningful for the hybrid) and the "safe threshold" column gives, per
method, the lowest threshold that rejects every out-of-scope question (their best top-1 score + 0.02).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from assistant.faq.knowledge_base import load_builtin  # noqa: E402
from assistant.faq.retrieval import FaqIndex, RetrievalSettings  # noqa: E402

PARAPHRASES = ROOT / "bench" / "data" / "faq_paraphrases.jsonl"
MARGIN = 0.02


def methods(base: RetrievalSettings) -> dict[str, RetrievalSettings]:
    return {
        "embeddings only": replace(base, dense_weight_en=1.0, dense_weight_zh=1.0),
        "BM25 only": replace(base, dense_weight_en=0.0, dense_weight_zh=0.0),
        "hybrid (app)": base,
    }


def evaluate(index: FaqIndex, rows: list[dict], threshold: float) -> dict[str, dict]:
    """Per language: hit@1, hit@3, in-scope answered correctly / rejected, out-of-scope rejected."""
    results = {}
    for lang in sorted({r["lang"] for r in rows}) + ["all"]:
        subset = [r for r in rows if lang in ("all", r["lang"])]
        hits1 = hits3 = answered_right = rejected_in = rejected_out = 0
        in_scope = [r for r in subset if r["faq_id"]]
        out_scope = [r for r in subset if not r["faq_id"]]
        oos_top = []
        for row in subset:
            matches = index.search(row["question"], 3)
            ids = [m.entry.id for m in matches]
            covered = matches[0].score >= threshold
            if row["faq_id"] is None:
                rejected_out += not covered
                oos_top.append(matches[0].score)
                continue
            hits1 += ids[0] == row["faq_id"]
            hits3 += row["faq_id"] in ids
            answered_right += covered and ids[0] == row["faq_id"]
            rejected_in += not covered
        results[lang] = {
            "n": len(in_scope), "hit@1": hits1 / len(in_scope), "hit@3": hits3 / len(in_scope),
            "answered right": answered_right / len(in_scope), "in-scope rejected": rejected_in / len(in_scope),
            "n_oos": len(out_scope), "oos rejected": rejected_out / max(len(out_scope), 1),
            "safe threshold": max(oos_top, default=0.0) + MARGIN,
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [json.loads(line) for line in PARAPHRASES.read_text("utf-8").splitlines() if line.strip()]
    kb, base = load_builtin(), RetrievalSettings()
    started = time.perf_counter()

    print(f"FAQ retrieval on {PARAPHRASES.relative_to(ROOT)} against the built-in FAQ ({len(kb)} entries); "
          f"threshold {base.threshold}, route threshold {base.route_threshold}.\n")
    print("| method | lang | in-scope | hit@1 | hit@3 | answered right @thr | in-scope rejected @thr "
          "| out-of-scope rejected @thr | safe threshold |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, settings in methods(base).items():
        index = FaqIndex(kb, settings=settings)
        for lang, r in evaluate(index, rows, base.threshold).items():
            print(f"| {name} | {lang} | {r['n']} | {r['hit@1']:.1%} | {r['hit@3']:.1%} | {r['answered right']:.1%} "
                  f"| {r['in-scope rejected']:.1%} | {r['oos rejected']:.0%} ({r['n_oos']}) "
                  f"| {r['safe threshold']:.3f} |")
    print(f"\n{time.perf_counter() - started:.0f} s. Reproduce: HF_HUB_OFFLINE=1 python bench/faq_benchmark.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
