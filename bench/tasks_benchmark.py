"""Benchmark the classification, NER and translation tasks with a chat model on real data.

Reads the shared benchmark data at run time (never copied into the repo) and prints a markdown
table: the metrics, the subset sizes, the wall time of each task and the command to reproduce.
The model is loaded the way the app serves it (``--engine auto``: llama.cpp on a CPU for a GGUF model,
through ``load_served_model``), so the numbers are the app's; ``--engine transformers`` measures the
transformers path instead (``--quant`` applies to it only).

    python bench/tasks_benchmark.py                         # the app's default model, default subsets (slow)
    python bench/tasks_benchmark.py --model smollm2-135m-instruct --limit 50
    python bench/tasks_benchmark.py --limit 20 --only sst2,conll2003
    python bench/tasks_benchmark.py --engine transformers --quant fp32 --data ../shared/data

Subsets (fixed, so runs compare): SST-2 dev and ChnSentiCorp dev, the first N rows (ChnSentiCorp is
scored with the Chinese labels 负面/正面); CoNLL-2003 test, the first N sentences; Multi30k
test2016 en->de, the first N pairs; Tatoeba cmn-eng en->zh, N pairs drawn with random.Random(seed).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.core.loading import QUANT_CHOICES, load_served_model  # noqa: E402
from assistant.core.model_sources import DEFAULT_CHAT_MODEL  # noqa: E402
from assistant.tasks import classification, ner, translation  # noqa: E402

DEFAULT_LIMITS = {"sst2": 200, "chnsenticorp": 100, "conll2003": 50, "multi30k": 50, "tatoeba": 50}


def read_tsv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]


def read_conll(path: Path, limit: int) -> list[tuple[list[str], list[str]]]:
    sentences, tokens, tags = [], [], []
    for line in path.open(encoding="utf-8"):
        line = line.rstrip("\n")
        if line:
            token, tag = line.split(" ")
            tokens.append(token)
            tags.append(tag)
        elif tokens:
            sentences.append((tokens, tags))
            tokens, tags = [], []
            if len(sentences) == limit:
                break
    return sentences


def bench_classification(loaded, rows, labels, batch_size):
    texts = [text.strip() for text, _ in rows]
    results = classification.classify_many(loaded, texts, labels)
    scores = classification.evaluate([r["label"] for r in results], [labels[int(label)] for _, label in rows])
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def bench_ner(loaded, sentences, batch_size):
    texts = [ner.join_tokens(tokens)[0] for tokens, _ in sentences]
    found = ner.extract_many(loaded, texts, ner.DEFAULT_ENTITY_TYPES, batch_size=batch_size)
    predicted = [ner.tags_from_entities(tokens, entities) for (tokens, _), entities in zip(sentences, found)]
    scores = ner.evaluate(predicted, [tags for _, tags in sentences])
    return {key: scores[key] for key in ("precision", "recall", "f1", "PER_f1", "ORG_f1", "LOC_f1", "MISC_f1")
            if key in scores}


def bench_translation(loaded, pairs, source, target, batch_size):
    outputs = translation.translate_lines(loaded, [s for s, _ in pairs], source, target, batch_size=batch_size)
    return translation.evaluate(outputs, [t for _, t in pairs], target_lang=target)


def run(args) -> list[dict]:
    data = Path(args.data)
    limits = {name: args.limit or getattr(args, name) for name in DEFAULT_LIMITS}
    plans = {
        "sst2": lambda: ("SST-2 dev (first N), labels negative/positive", limits["sst2"], bench_classification,
                         (read_tsv(data / "sst2/dev.tsv")[:limits["sst2"]], ["negative", "positive"])),
        "chnsenticorp": lambda: ("ChnSentiCorp dev (first N), labels 负面/正面", limits["chnsenticorp"],
                                 bench_classification,
                                 (read_tsv(data / "chnsenticorp/dev.tsv")[:limits["chnsenticorp"]], ["负面", "正面"])),
        "conll2003": lambda: ("CoNLL-2003 test (first N sentences), seqeval", limits["conll2003"], bench_ner,
                              (read_conll(data / "conll2003/test.txt", limits["conll2003"]),)),
        "multi30k": lambda: ("Multi30k test2016 en→de (first N)", limits["multi30k"], bench_translation,
                             (list(zip(read_lines(data / "multi30k/test2016.en"),
                                       read_lines(data / "multi30k/test2016.de")))[:limits["multi30k"]], "en", "de")),
        "tatoeba": lambda: (f"Tatoeba cmn-eng en→zh (seed {args.seed} sample)", limits["tatoeba"], bench_translation,
                            (sample_tatoeba(data, limits["tatoeba"], args.seed), "en", "zh")),
    }
    loaded = load_served_model(args.model, args.quant, args.device, args.engine)
    for notice in loaded.notices:
        print(f"note: {notice}", file=sys.stderr)
    args.described = loaded.describe()
    print(f"model: {args.described}", file=sys.stderr)
    results = []
    for name in args.only:
        description, size, function, inputs = plans[name]()
        started = time.perf_counter()
        scores = function(loaded, *inputs, args.batch_size)
        seconds = time.perf_counter() - started
        print(f"{name}: {scores} in {seconds:.0f} s", file=sys.stderr, flush=True)
        results.append({"task": name, "subset": description, "n": size, "scores": scores, "seconds": seconds})
    return results


def read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def sample_tatoeba(data: Path, size: int, seed: int) -> list[tuple[str, str]]:
    rows = read_tsv(data / "tatoeba_cmn_eng/cmn-eng.tsv")
    return [(rows[i][0], rows[i][1]) for i in sorted(random.Random(seed).sample(range(len(rows)), size))]


def markdown(results: list[dict], model: str, command: str, total: float) -> str:
    lines = ["| task | data (subset) | N | metrics | wall time |", "|---|---|---:|---|---:|"]
    for r in results:
        metrics = ", ".join(f"{k} {v * 100:.1f}" if k not in ("bleu", "chrf") else f"{k} {v:.1f}"
                            for k, v in r["scores"].items())
        lines.append(f"| {r['task']} | {r['subset']} | {r['n']} | {metrics} | {r['seconds']:.0f} s |")
    lines += ["", f"Model: {model}. Total wall time {total:.0f} s. Accuracy, F1, precision and recall are "
                  "percentages; BLEU and chrF are sacrebleu scores.", "", f"Reproduce: `{command}`"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"), help="shared benchmark data folder")
    parser.add_argument("--model", default=DEFAULT_CHAT_MODEL, help=f"name or path (default {DEFAULT_CHAT_MODEL})")
    parser.add_argument("--engine", default="auto", choices=("auto", "transformers"),
                        help="auto: what the app serves (llama.cpp on a CPU for a GGUF model); transformers: always it")
    parser.add_argument("--quant", default="nf4", choices=QUANT_CHOICES, help="precision on the transformers engine")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=8,
                        help="sequences generated together (ner, translation; llama.cpp runs one at a time)")
    parser.add_argument("--limit", type=int, default=0, help="use this N for every dataset (overrides the flags below)")
    for name, default in DEFAULT_LIMITS.items():
        parser.add_argument(f"--{name}", type=int, default=default, help=f"N for {name} (default {default})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the Tatoeba sample")
    parser.add_argument("--only", default=",".join(DEFAULT_LIMITS), help="comma-separated subset of tasks")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    args = parser.parse_args(argv)
    args.only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = [name for name in args.only if name not in DEFAULT_LIMITS]
    if unknown or not Path(args.data).is_dir():
        parser.error(f"unknown task(s) {unknown}; choose from {list(DEFAULT_LIMITS)}" if unknown
                     else f"--data {args.data} is not a folder (expected the shared benchmark data)")
    started = time.perf_counter()
    results = run(args)
    command = shlex.join(["python", "bench/tasks_benchmark.py", *(sys.argv[1:] if argv is None else argv)])
    table = markdown(results, args.described, command, time.perf_counter() - started)
    print(table)
    if args.json:
        report = {"command": command, "model": args.described, "results": results}
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
