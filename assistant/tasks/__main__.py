"""Run a task over a file from the command line, with a progress bar.

    python -m assistant.tasks classify --input reviews.csv --labels "positive, negative" --output out.csv
    python -m assistant.tasks ner --input sentences.txt --entity-types "PER, ORG, LOC" --output entities.jsonl
    python -m assistant.tasks translate --input lines.txt --source-lang auto --target-lang de --output de.txt

Inputs: classify reads CSV/TSV with a text column (or .txt, one text per line) and writes CSV/TSV
with ``prediction`` and ``confidence`` columns; ner reads .txt (one text per line) or .jsonl
(a "text" field) and writes JSON Lines {"text", "entities"}; translate reads a text file and writes
one translated line per input line. Every flag is checked before the model loads. Exit code 2
means bad input (the message says what to fix).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from assistant.core.errors import InputError, UserError
from assistant.core.loading import QUANT_CHOICES
from assistant.core.model_sources import DEFAULT_CHAT_MODEL

OUTPUT_SUFFIXES = {"classify": (".csv", ".tsv"), "ner": (".jsonl",), "translate": (".txt",)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m assistant.tasks", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("classify", "label each text"), ("ner", "find named entities"),
                            ("translate", "translate each line")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--input", required=True, help="input file")
        sub.add_argument("--output", required=True, help=f"output file ({' or '.join(OUTPUT_SUFFIXES[name])})")
        sub.add_argument("--model", default=DEFAULT_CHAT_MODEL, help="embedded short name, folder or hub id")
        sub.add_argument("--quant", default="nf4", choices=QUANT_CHOICES, help="precision (default nf4)")
        sub.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
        sub.add_argument("--batch-size", type=int, default=8, help="texts generated together (ner, translate)")
        if name == "classify":
            sub.add_argument("--labels", required=True, help='comma-separated labels, e.g. "positive, negative"')
        if name == "ner":
            sub.add_argument("--entity-types", default="PER, ORG, LOC, MISC", help="comma-separated entity types")
        if name == "translate":
            sub.add_argument("--source-lang", default="auto", help="en, zh, de, fr, es, ja or auto (default)")
            sub.add_argument("--target-lang", required=True, help="en, zh, de, fr, es or ja")
    return parser


def check_paths(args) -> tuple[Path, Path]:
    source, target = Path(args.input), Path(args.output)
    if not source.is_file():
        raise InputError(f"--input '{source}' is not a file. Check the path.")
    if target.suffix.lower() not in OUTPUT_SUFFIXES[args.command]:
        raise InputError(f"--output '{target}' must end with {' or '.join(OUTPUT_SUFFIXES[args.command])}.")
    if target.resolve() == source.resolve():
        raise InputError("--output is the same file as --input; choose another name so the input is kept.")
    if not target.parent.is_dir():
        raise InputError(f"--output folder '{target.parent}' does not exist. Create it first.")
    if not 1 <= args.batch_size <= 64:
        raise InputError(f"--batch-size must be between 1 and 64; got {args.batch_size}.")
    return source, target


def read_ner_texts(path: Path) -> list[str]:
    """Texts from a .txt file (one per non-empty line) or .jsonl ("text" field), each checked."""
    from assistant.tasks import ner

    texts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        text = line
        if path.suffix.lower() == ".jsonl":
            try:
                text = json.loads(line).get("text")
            except (json.JSONDecodeError, AttributeError):
                raise InputError(f"'{path.name}' line {number} is not a JSON object.") from None
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"'{path.name}' line {number} has no non-empty \"text\" field.")
        try:
            texts.append(ner.check_text(text))
        except InputError as exc:
            raise InputError(f"'{path.name}' line {number}: {exc}") from None
    if not texts:
        raise InputError(f"'{path.name}' has no texts.")
    return texts


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        source, target = check_paths(args)
        run = prepare(args, source)  # everything about the input is checked before the slow model load
        from assistant.core.loading import load_causal_lm

        loaded = load_causal_lm(args.model, args.quant, args.device)
        count = run(loaded, target)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UnicodeDecodeError:
        print(f"error: '{args.input}' is not UTF-8 text. Save it as UTF-8.", file=sys.stderr)
        return 2
    print(f"Wrote {count} results to {target}", file=sys.stderr)
    return 0


def prepare(args, source: Path):
    """Read and check the input and task flags; return run(loaded, target) -> number of results."""
    from tqdm import tqdm

    def progress_bar(total: int):
        bar = tqdm(total=total, unit="text", file=sys.stderr)
        return bar, lambda done, _total: bar.update(done - bar.n)

    if args.command == "classify":
        from assistant.tasks import classification

        labels = classification.parse_labels(args.labels)
        header, rows, column = classification.read_text_table(source)
        texts = classification.check_texts([row[column] for row in rows], source.name)

        def run(loaded, target):
            bar, tick = progress_bar(len(rows))
            with bar:
                results = classification.classify_many(loaded, texts, labels, tick)
            classification.write_predictions(target, header, rows, results)
            return len(results)
        return run

    if args.command == "ner":
        from assistant.tasks import ner

        types = ner.parse_entity_types(args.entity_types)
        texts = read_ner_texts(source)

        def run(loaded, target):
            bar, tick = progress_bar(len(texts))
            with bar:
                found = ner.extract_many(loaded, texts, types, args.batch_size, tick)
            with target.open("w", encoding="utf-8") as handle:
                for text, entities in zip(texts, found):
                    handle.write(json.dumps({"text": text, "entities": entities}, ensure_ascii=False) + "\n")
            return len(texts)
        return run

    from assistant.tasks import translation

    lines = source.read_text(encoding="utf-8").replace("\r\n", "\n").rstrip("\n").split("\n")
    if not any(line.strip() for line in lines):
        raise InputError(f"'{source.name}' has no text to translate.")
    languages = translation.resolve_languages("\n".join(lines), args.source_lang, args.target_lang)

    def run(loaded, target):
        bar, tick = progress_bar(sum(1 for line in lines if line.strip()))
        with bar:
            translated = translation.translate_lines(loaded, lines, *languages, args.batch_size, tick)
        target.write_text("\n".join(translated) + "\n", encoding="utf-8")
        return len(translated)
    return run


if __name__ == "__main__":
    sys.exit(main())
