"""FAQ retrieval benchmark: hit@1 / hit@3 on held-out paraphrases, per language, for embeddings only,
BM25 only and the hybrid the app uses; plus out-of-scope rejection at the app's threshold. Retrieval does
not use the chat model; ``--phrase MODEL`` measures the one step that does, "Phrase with the model".

    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py                 # markdown table on stdout
    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py --threads 1      # gentler on a shared machine
    HF_HUB_OFFLINE=1 python bench/faq_benchmark.py --phrase qwen2.5-coder-0.5b-instruct --phrase-limit 15

Data: bench/data/faq_paraphrases.jsonl (faq_id, lang, question; faq_id null = out of scope; hard
paraphrases that avoid the FAQ's own words) and bench/data/faq_paraphrases_zh.jsonl (Chinese questions as
users word them, two per entry plus out-of-scope ones, split into "tune" (the tokenizer and threshold_zh
were chosen on it) and "test" (never tuned on: the number to report)), asked against the built-in FAQ. Each method scores on its own scale, so rejection is shown for every
method at the app's threshold (meaningful for the hybrid) and the "safe threshold" column gives, per
method, the lowest threshold that rejects every out-of-scope question (their best top-1 score + 0.02).
"routed" is the share of in-scope questions the Chat tab would answer from the FAQ (score at or above
the route threshold) and, in brackets, how many of those get the right entry.

``--phrase MODEL`` (instead of the retrieval tables): the first N in-scope questions of each language (English
from faq_paraphrases.jsonl, Chinese from the zh test split) asked through ``assistant.tasks.faq.answer`` with
``use_model=True``, the model served as the app serves it. Per language: how many were answered (retrieved),
the share whose model wording the app kept (the rest failed the grounding check and show the entry as
written), the share of kept replies in the question's language, and their token F1 against the answer of
the entry they were phrased from.
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

from assistant.core.language import chinese_or_english
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


def phrasing(asked: list[dict], answer_of, reference, strayed: dict) -> str:
    """Markdown table of the model's phrasing: ``answer_of(question)`` is the app's answer dict (use_model on),
    ``reference(result, lang)`` the text the reply was phrased from, ``strayed`` the app's fallback notes."""
    from assistant.tasks.faq import token_f1

    stats: dict[str, dict] = {}
    for row in asked:
        lang, started = row["lang"], time.perf_counter()
        result = answer_of(row["question"])
        seconds = time.perf_counter() - started
        s = stats.setdefault(lang, {"asked": 0, "answered": 0, "kept": 0, "in language": 0, "f1": 0.0, "s": 0.0})
        s["asked"] += 1
        if not result["sources"]:
            continue
        s["answered"] += 1
        s["s"] += seconds
        if strayed[lang] in result["answer"]:
            continue
        s["kept"] += 1
        s["in language"] += chinese_or_english(result["answer"]) == lang
        s["f1"] += token_f1(result["answer"], reference(result, lang))
    lines = ["| lang | asked | answered | model wording kept | kept replies in the question's language "
             "| token F1 of kept vs their source | s per answer |", "|---|---:|---:|---:|---:|---:|---:|"]
    for lang, s in stats.items():
        kept = max(s["kept"], 1)
        lines.append(f"| {lang} | {s['asked']} | {s['answered']} | {s['kept'] / max(s['answered'], 1):.0%} "
                     f"| {s['in language'] / kept:.0%} | {s['f1'] / kept:.2f} | {s['s'] / max(s['answered'], 1):.1f} |")
    return "\n".join(lines)


def phrase_faq(model: str, limit: int) -> None:
    from assistant.core.loading import load_served_model
    from assistant.tasks.faq import STRAYED_NOTE, answer

    kb = load_builtin()
    loaded = load_served_model(model)
    english = [r for r in read_rows(PARAPHRASES) if r["faq_id"] and r["lang"] == "en"][:limit]
    chinese = [r for r in read_rows(CHINESE_SPLITS) if r["faq_id"] and r["split"] == "test"][:limit]
    entries = {entry.id: entry for entry in kb.entries}
    print(f"Phrase with the model: {loaded.describe()}; first {limit} in-scope questions per language.\n")
    print(phrasing(english + chinese, lambda question: answer(question, kb, loaded, use_model=True),
                   lambda result, lang: entries[result["sources"][0]["id"]].in_language(lang).answer, STRAYED_NOTE))
    print(f"\nReproduce: HF_HUB_OFFLINE=1 python bench/faq_benchmark.py --phrase {model} --phrase-limit {limit}")


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--phrase", metavar="MODEL",
                        help="measure 'Phrase with the model' with this chat model instead of the retrieval tables")
    parser.add_argument("--phrase-limit", type=int, default=15, help="in-scope questions per language for --phrase")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.phrase:
        phrase_faq(args.phrase, args.phrase_limit)
        return 0
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
