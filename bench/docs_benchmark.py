"""Document-QA benchmark: retrieval hit@1 / hit@3 and out-of-scope rejection on documents written for the
project, and latency (index time, per-question time) on a generated 100-page PDF.

    HF_HUB_OFFLINE=1 python bench/docs_benchmark.py              # markdown tables on stdout
    HF_HUB_OFFLINE=1 python bench/docs_benchmark.py --sweep      # weights and thresholds on the dev split
    HF_HUB_OFFLINE=1 python bench/docs_benchmark.py --pages 20   # a smaller PDF for a quick run
    HF_HUB_OFFLINE=1 python bench/docs_benchmark.py --phrase qwen2.5-coder-0.5b-instruct   # the model's phrasing

Data: bench/data/docs/ (an English operator manual for this app and a Chinese course note on fine-tuning)
and bench/data/docs_questions.jsonl (40 questions, each with a phrase ``expect`` that occurs in exactly
one passage: the expected passage; plus 12 out-of-scope questions with ``file`` null), split into "dev"
(DocSearchSettings were chosen on it) and "test" (only reported). The PDF needs fpdf2
(requirements-dev.txt). Retrieval does not use the chat model; ``--phrase MODEL`` measures the step that does
("Phrase the answer with the model", ``assistant.documents.answer.answer`` with ``use_model=True``) on the
test split's in-scope questions, with the columns of ``faq_benchmark.py --phrase``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from assistant.documents.index import DocumentIndex
from assistant.documents.search_settings import DocSearchSettings

DOCS = ROOT / "bench" / "data" / "docs"
QUESTIONS = ROOT / "bench" / "data" / "docs_questions.jsonl"
MARGIN = 0.02


def expected_passages(index: DocumentIndex, rows: list[dict]) -> dict[str, str]:
    """question -> id of the one passage holding its ``expect`` phrase (refuses ambiguous phrases)."""
    found = {}
    for row in rows:
        if row["file"] is None:
            continue
        ids = [(p.file, p.number) for p, _ in index._passages.values()
               if p.file == row["file"] and row["expect"] in p.text]
        if len(ids) != 1:
            raise SystemExit(f"'{row['expect']}' is in {len(ids)} passages of {row['file']}; make it unique.")
        found[row["question"]] = ids[0]
    return found


def evaluate(index: DocumentIndex, rows: list[dict], expected: dict, settings: DocSearchSettings) -> dict:
    index.settings = settings
    out = {}
    searched = [(row, index.search(row["question"], 3)) for row in rows]
    for lang in ("en", "zh", "all"):
        subset = [(r, hits) for r, hits in searched if lang in ("all", r["lang"])]
        gold = [(expected[r["question"]], [(h.passage.file, h.passage.number) for h in hits],
                 hits[0].score - settings.threshold_for(r["lang"])) for r, hits in subset if r["file"]]
        oos = [(hits[0].score if hits else 0.0, hits[0].score - settings.threshold_for(r["lang"]) if hits else -1)
               for r, hits in subset if not r["file"]]
        n = max(len(gold), 1)
        out[lang] = {"n": len(gold), "hit@1": sum(g == ids[0] for g, ids, _ in gold) / n,
                     "hit@3": sum(g in ids for g, ids, _ in gold) / n,
                     "answered right": sum(g == ids[0] and m >= 0 for g, ids, m in gold) / n,
                     "rejected": sum(m < 0 for _, _, m in gold) / n, "n_oos": len(oos),
                     "oos rejected": sum(m < 0 for _, m in oos) / max(len(oos), 1),
                     "safe": max((s for s, _ in oos), default=0.0) + MARGIN,
                     "lowest right": min((m + settings.threshold_for(lang if lang != "all" else "en")
                                          for g, ids, m in gold if g == ids[0]), default=0.0)}
    return out


def table(index, rows, expected, base) -> None:
    print("| method | split | lang | questions | hit@1 | hit@3 | answered right @thr | in-scope rejected @thr "
          "| out-of-scope rejected @thr | safe threshold |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, settings in base.ablations().items():
        for split in ("dev", "test"):
            for lang, r in evaluate(index, [x for x in rows if x["split"] == split], expected, settings).items():
                print(f"| {name} | {split} | {lang} | {r['n']} | {r['hit@1']:.1%} | {r['hit@3']:.1%} "
                      f"| {r['answered right']:.1%} | {r['rejected']:.1%} | {r['oos rejected']:.0%} of {r['n_oos']} "
                      f"| {r['safe']:.3f} |")
    index.settings = base


def sweep(index, rows, expected, base) -> None:
    dev = [x for x in rows if x["split"] == "dev"]
    print("| w_en | w_zh | hit@1 en | hit@1 zh | safe thr en | safe thr zh | lowest right en | lowest right zh |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w_en in (0.3, 0.4, 0.5, 0.6, 0.7):
        for w_zh in (0.0, 0.1, 0.3):
            r = evaluate(index, dev, expected, replace(base, dense_weight_en=w_en, dense_weight_zh=w_zh))
            print(f"| {w_en} | {w_zh} | {r['en']['hit@1']:.1%} | {r['zh']['hit@1']:.1%} | {r['en']['safe']:.3f} "
                  f"| {r['zh']['safe']:.3f} | {r['en']['lowest right']:.3f} | {r['zh']['lowest right']:.3f} |")
    index.settings = base


COLOURS = "amber crimson violet teal ochre indigo scarlet olive silver maroon".split()
ANIMALS = "heron badger falcon otter lynx beaver raven walrus gecko bison".split()


def write_pdf(path: Path, pages: int, seed: int = 0) -> list[tuple[int, str]]:
    """A ``pages``-page English PDF: manual sentences shuffled as filler, plus one fact per page (a part
    named by a colour and an animal, its own interval); returns (page, question about that fact) pairs."""
    from fpdf import FPDF

    rng = random.Random(seed)
    filler = [s.strip() + "." for s in (DOCS / "studio_manual.md").read_text("utf-8").replace("\n", " ").split(". ")
              if len(s) > 40 and "#" not in s]
    pdf, asked = FPDF(), []
    pdf.set_font("Helvetica", size=10)
    for page in range(1, pages + 1):
        pdf.add_page()
        part = f"{COLOURS[(page - 1) % 10]} {ANIMALS[(page - 1) // 10 % 10]} valve"
        fact = f"The {part} must be replaced every {rng.randrange(2, 40)} months by a certified technician."
        body = " ".join(rng.sample(filler, min(8, len(filler)))) + " " + fact + " " + \
            " ".join(rng.sample(filler, min(8, len(filler))))
        pdf.multi_cell(0, 5, body.encode("latin-1", "replace").decode("latin-1"))
        asked.append((page, f"How often must the {part} be replaced?"))
    pdf.output(str(path))
    return asked


def latency(pages: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated_manual.pdf"
        asked = write_pdf(path, pages)
        index = DocumentIndex.in_memory()
        index.encoder  # load MiniLM before timing
        started = time.perf_counter()
        added = index.add_file(path)
        indexed = time.perf_counter() - started
        sample = asked[:: max(1, len(asked) // 20)][:20]
        started = time.perf_counter()
        right = sum(index.search(q, 1)[0].passage.page == page for page, q in sample)
        per_question = (time.perf_counter() - started) / len(sample)
        size = path.stat().st_size / 1e6
    print(f"\n| PDF | size | passages | index time | per question | right page @1 |")
    print("|---|---:|---:|---:|---:|---:|")
    print(f"| {pages} pages (generated) | {size:.2f} MB | {added.passages} | {indexed:.1f} s | "
          f"{per_question * 1000:.0f} ms | {right}/{len(sample)} |")


def phrase_docs(index, rows: list[dict], model: str) -> None:
    from faq_benchmark import phrasing

    from assistant.core.loading import load_served_model
    from assistant.documents.answer import STRAYED_NOTE, answer

    loaded = load_served_model(model)
    asked = [row for row in rows if row["split"] == "test" and row["file"]]
    print(f"Phrase with the model: {loaded.describe()}; the test split's {len(asked)} in-scope questions.\n")
    print(phrasing(asked, lambda question: answer(question, [index], loaded, use_model=True),
                   lambda result, lang: result["sources"][0]["text"], STRAYED_NOTE))
    print(f"\nReproduce: HF_HUB_OFFLINE=1 python bench/docs_benchmark.py --phrase {model}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="weights / thresholds on the dev split only")
    parser.add_argument("--pages", type=int, default=100, help="pages of the generated PDF (0: skip latency)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    parser.add_argument("--phrase", metavar="MODEL",
                        help="measure 'Phrase with the model' with this chat model instead of the retrieval tables")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [json.loads(line) for line in QUESTIONS.read_text("utf-8").splitlines() if line.strip()]
    index, base = DocumentIndex.in_memory(), DocSearchSettings()
    for path in sorted(DOCS.iterdir()):
        index.add_file(path)
    expected = expected_passages(index, rows)
    print(f"Document QA on {', '.join(sorted(index.files().values()))} ({len(index)} passages), "
          f"{QUESTIONS.relative_to(ROOT)}; thresholds {base.threshold} (en), {base.threshold_zh} (zh).\n")
    if args.sweep:
        sweep(index, rows, expected, base)
        return 0
    if args.phrase:
        phrase_docs(index, rows, args.phrase)
        return 0
    table(index, rows, expected, base)
    if args.pages:
        latency(args.pages)
    print("\nReproduce: HF_HUB_OFFLINE=1 python bench/docs_benchmark.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
