"""FAQ retrieval benchmark: hit@1 / hit@3 on held-out paraphrases, per language, for embeddings only,
BM25 only and the hybrid the app uses; plus out-of-scope rejection at the app's threshold.

    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py                 # markdown table on stdout
    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py --threads 1      # gentler on a shared machine

Data: bench/data/faq_paraphrases.jsonl (faq_id, lang, question; faq_id null = out of scope; hard
paraphrases that avoid the FAQ's own words) and bench/data/faq_paraphrases_zh.jsonl (Chinese questions as
users word them, two per entry plus out-of-scope ones, split into "tune" (the tokenizer and threshold_zh
were chosen on it) and "test" (never tuned on: the number to report)), asked against the built-in FAQ. Each method scores on its own scale, so rejection is shown for every
method at the app's threshold (meaningful for the hybrid) and the "safe threshold" column gives, per
method, the lowest threshold that rejects every out-of-scope question (their best top-1 score + 0.02).
"routed" is the share of in-scope questions the Chat tab would answer from the FAQ (score at or above
the route threshold) and, in brackets, how many of those get the right entry.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from assistant.faq.knowledge_base import load_builtin
from assistant.faq.retrieval import FaqIndex, RetrievalSettings

PARAPHRASES = ROOT / "bench" / "data" / "faq_paraphrases.jsonl"
CHINESE_SPLITS = ROOT / "bench" / "data" / "faq_paraphrases_zh.jsonl"
MARGIN = 0.02


def evaluate(index: FaqIndex, rows: list[dict], settings: RetrievalSettings) -> dict[str, dict]:
    """Per language and overall: hit@1, hit@3, answered right / rejected at the threshold, routed to chat
    answers (and how many of those are right), out-of-scope rejected, and the safe threshold."""
    searched = [(row, index.search(row["question"], 3)) for row in rows]  # each question once
    results = {}
    groups = sorted({r["lang"] for r in rows}) + (["all"] if len({r["lang"] for r in rows}) > 1 else [])
    for lang in groups:
        subset = [(r, m) for r, m in searched if lang in ("all", r["lang"])]
        # Each score minus its question's language threshold: >= 0 means "covered".
        in_scope = [(r["faq_id"], [x.entry.id for x in m], m[0].score - settings.threshold_for(r["lang"]))
                    for r, m in subset if r["faq_id"]]
        routed = [m[0].score >= settings.route_threshold for r, m in subset if r["faq_id"]]
        oos_top = [m[0].score - settings.threshold_for(r["lang"]) for r, m in subset if not r["faq_id"]]
        n = len(in_scope)
        right = [ids[0] == gold for gold, ids, _ in in_scope]
        oos_raw = [m[0].score for r, m in subset if not r["faq_id"]]
        results[lang] = {
            "n": n,
            "hit@1": sum(right) / n,
            "hit@3": sum(gold in ids for gold, ids, _ in in_scope) / n,
            "answered right": sum(ok and s >= 0 for ok, (_, _, s) in zip(right, in_scope)) / n,
            "in-scope rejected": sum(s < 0 for _, _, s in in_scope) / n,
            "routed": sum(routed) / n,
            "routed right": sum(ok and r for ok, r in zip(right, routed)) / max(sum(routed), 1),
            "n_oos": len(oos_top),
            "oos rejected": sum(s < 0 for s in oos_top) / max(len(oos_top), 1),
            "oos routed": sum(s >= settings.route_threshold for s in oos_raw),
            "safe threshold": max(oos_raw, default=0.0) + MARGIN,
        }
    return results


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    kb, base = load_builtin(), RetrievalSettings()
    started = time.perf_counter()
    indexes = {name: FaqIndex(kb, settings=settings) for name, settings in base.ablations().items()}
    print(f"FAQ retrieval against the built-in FAQ ({len(kb)} entries); threshold {base.threshold} (en), "
          f"{base.threshold_zh} (zh), route threshold {base.route_threshold}.")
    sets = [(PARAPHRASES.name, read_rows(PARAPHRASES))]
    chinese = read_rows(CHINESE_SPLITS)
    sets += [(f"{CHINESE_SPLITS.name} [{split}]", [r for r in chinese if r["split"] == split]) for split in ("tune", "test")]
    for title, rows in sets:
        print(f"\n{title}\n")
        print("| method | lang | in-scope | hit@1 | hit@3 | answered right @thr | in-scope rejected @thr "
              "| out-of-scope rejected @thr | safe threshold | routed @route (rank-1 right) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, index in indexes.items():
            for lang, r in evaluate(index, rows, base).items():
                routed_right = f"{r['routed right']:.0%}" if r["routed"] else "-"
                print(f"| {name} | {lang} | {r['n']} | {r['hit@1']:.1%} | {r['hit@3']:.1%} | {r['answered right']:.1%} "
                      f"| {r['in-scope rejected']:.1%} | {r['oos rejected']:.0%} of {r['n_oos']} "
                      f"| {r['safe threshold']:.3f} | {r['routed']:.1%} ({routed_right}) |")
    print(f"\n{time.perf_counter() - started:.0f} s. Reproduce: HF_HUB_OFFLINE=1 python bench/faq_benchmark.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
