"""Text classification: the prompt, label scoring, output parsing, metrics and table files.

Label probabilities come from the model's likelihood of each label as the answer, never from
parsing free text: see ``label_scores``. The same ``build_messages`` serves the UI, the API,
the CLI, the benchmark and fine-tuning (``training_example``).

    python -m assistant.tasks classify --input reviews.csv --labels "positive, negative" --output out.csv
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from assistant.core.errors import InputError
from assistant.core.loading import LoadedModel
from assistant.core.generation import Progress, encode_messages, score_continuations, softmax

TASK_NAME = "classification"
PROMPT_VERSION = "1"

MIN_LABELS, MAX_LABELS = 2, 50
MAX_LABEL_CHARS = 100
MAX_TEXT_BYTES = 100_000

SYSTEM_PROMPT = "You are a text classifier. Reply with exactly one label from the list given, and nothing else."


def parse_labels(labels: str | Sequence[str]) -> list[str]:
    """Labels from "a, b, c" (ASCII or Chinese commas) or a list; checked: 2-50, unique, short."""
    if isinstance(labels, str):
        labels = re.split(r"[,，]", labels)
    cleaned = [str(label).strip() for label in labels if str(label).strip()]
    if len(cleaned) < MIN_LABELS:
        raise InputError(
            f"Give at least {MIN_LABELS} labels separated by commas, e.g. 'positive, negative' "
            f"(got {len(cleaned)})."
        )
    if len(cleaned) > MAX_LABELS:
        raise InputError.keyed("classify.too_many_labels", count=len(cleaned), limit=MAX_LABELS)
    seen: dict[str, str] = {}
    for label in cleaned:
        if len(label) > MAX_LABEL_CHARS or "\n" in label:
            raise InputError.keyed("classify.label_too_long", label=label[:40], limit=MAX_LABEL_CHARS)
        key = label.casefold()
        if key in seen:
            raise InputError.keyed("classify.duplicate_label", label=label, same_as=seen[key])
        seen[key] = label
    return cleaned


def check_text(text: str) -> str:
    """The text, stripped; InputError if empty or over the size limit."""
    text = (text or "").strip()
    if not text:
        raise InputError.keyed("classify.empty_text")
    size = len(text.encode("utf-8"))
    if size > MAX_TEXT_BYTES:
        raise InputError.keyed("classify.text_too_big", size=size, limit=MAX_TEXT_BYTES)
    return text


def check_texts(texts: Sequence[str], source: str) -> list[str]:
    """``check_text`` for every row of a file; the error names the file and the row."""
    checked = []
    for number, text in enumerate(texts, 1):
        try:
            checked.append(check_text(text))
        except InputError as exc:
            raise InputError(f"'{source}' row {number} (after the header): {exc}") from None
    return checked


def build_messages(text: str, labels: Sequence[str]) -> list[dict]:
    """System + user messages asking for one label of ``labels`` for ``text``."""
    user = (f"Labels: {', '.join(labels)}\n\nText: {text}\n\n"
            "Which label fits the text best? Answer with the label only.")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def training_example(row: dict, labels: Sequence[str] | None = None) -> tuple[list[dict], str]:
    """(prompt messages, target label) from a row {"text", "label"}; ``labels`` is the label set."""
    if labels is None:
        raise InputError("training_example for classification needs labels=[...] (the dataset's label set).")
    labels = parse_labels(labels)
    label = str(row.get("label", "")).strip()
    if label not in labels:
        raise InputError(f"Row label '{label}' is not one of the labels: {', '.join(labels)}.")
    return build_messages(check_text(str(row.get("text", ""))), labels), label


def parse_output(output: str, labels: Sequence[str]) -> str | None:
    """Map a generated answer to a label: exact (case-insensitive) match, else the label that
    appears first in the answer (longest wins a tie), else None."""
    answer = (output or "").strip().strip(".。!！\"'`*").strip()
    for label in labels:
        if answer.casefold() == label.casefold():
            return label
    lowered = answer.casefold()
    found = [(lowered.find(label.casefold()), -len(label), label) for label in labels]
    found = [item for item in found if item[0] >= 0]
    return min(found)[2] if found else None


def label_scores(loaded: LoadedModel, text: str, labels: Sequence[str], length_normalize: bool = False) -> dict:
    """Probability of each label as the model's whole answer to ``build_messages(text, labels)``.

    Each label is scored as the sum of the log-probabilities of its tokens plus the end-of-turn
    token, right after the assistant generation prompt (the end token keeps a label that is a
    prefix of another, like "pos" / "positive", from winning by default). The sums are turned
    into a distribution over exactly these labels with a softmax, so the result is the model's
    probability of each answer given that the answer is one of the labels.

    Length normalisation is off by default: the summed log-probability is the probability of the
    whole answer, and a multi-token label loses little because its later tokens are nearly
    certain once the first is chosen. ``length_normalize=True`` divides each sum by its token
    count first (a geometric mean per token), which flattens the distribution.
    """
    text, labels = check_text(text), parse_labels(labels)
    tokenizer = loaded.tokenizer
    prompt = encode_messages(tokenizer, build_messages(text, labels))
    end = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    continuations = [tokenizer.encode(label, add_special_tokens=False) + end for label in labels]
    longest = max(len(c) for c in continuations)
    if len(prompt) + longest > loaded.context_window:
        raise InputError(
            f"The text is too long for this model: the prompt needs {len(prompt)} tokens and the context "
            f"holds {loaded.context_window}. Shorten the text."
        )
    sums = score_continuations(loaded, prompt, continuations)
    if length_normalize:
        sums = [total / len(tokens) for total, tokens in zip(sums, continuations)]
    return dict(zip(labels, softmax(sums)))


def classify(loaded: LoadedModel, text: str, labels: str | Sequence[str]) -> dict:
    """{"label": the most likely label, "scores": {label: probability}} (probabilities sum to 1)."""
    scores = label_scores(loaded, text, parse_labels(labels))
    return {"label": max(scores, key=scores.get), "scores": scores}


def classify_many(loaded: LoadedModel, texts: Sequence[str], labels: str | Sequence[str],
                  progress: Progress | None = None) -> list[dict]:
    """``classify`` for each text, in order; ``progress(done, total)`` after each."""
    labels = parse_labels(labels)
    results = []
    for done, text in enumerate(texts, 1):
        results.append(classify(loaded, text, labels))
        if progress:
            progress(done, len(texts))
    return results


def evaluate(predictions: Sequence[str], references: Sequence[str]) -> dict:
    """accuracy, macro_f1 (over every label seen in either list) and confusion[gold][predicted]."""
    if len(predictions) != len(references):
        raise InputError(f"{len(predictions)} predictions but {len(references)} references: they must pair up.")
    if not references:
        raise InputError("Nothing to evaluate: the reference list is empty.")
    labels = sorted({str(x) for x in references} | {str(x) for x in predictions if x is not None})
    confusion = {gold: {pred: 0 for pred in labels} for gold in labels}
    for pred, gold in zip(predictions, references):
        if pred is not None:
            confusion[str(gold)][str(pred)] += 1
    from sklearn.metrics import f1_score

    index = {label: i for i, label in enumerate(labels)}
    gold_ids = [index[str(gold)] for gold in references]
    predicted_ids = [-1 if pred is None else index[str(pred)] for pred in predictions]  # -1: no answer, always wrong
    macro_f1 = f1_score(gold_ids, predicted_ids, labels=list(range(len(labels))), average="macro", zero_division=0)
    correct = sum(1 for pred, gold in zip(predictions, references) if pred is not None and str(pred) == str(gold))
    return {"accuracy": correct / len(references), "macro_f1": float(macro_f1), "confusion": confusion}


# --- table files: CSV / TSV with a text column, or plain text with one text per line ---------

def _delimiter(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "," if suffix == ".csv" else "\t"
    if suffix == ".txt":
        return None
    raise InputError.keyed("classify.not_a_table", name=path.name)


def read_text_table(path: str | Path, max_rows: int | None = None) -> tuple[list[str], list[list[str]], int]:
    """(header, rows, index of the text column). The text column is the one named ``text``, else
    the first column holding non-numeric values. A .txt file is one text per non-empty line.
    TSV is read without quote handling (tabs separate, quotes are text)."""
    path = Path(path)
    delimiter = _delimiter(path)

    def too_many(count: int) -> None:  # checked while reading: a huge file is refused before it is held
        if max_rows is not None and count > max_rows:
            raise InputError(f"'{path.name}' has more than {max_rows:,} rows; the limit here is {max_rows:,}. "
                             "Split the file.")

    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if delimiter is None:
                table = []
                for line in handle:
                    if line.strip():
                        table.append([line.rstrip("\r\n")])
                        too_many(len(table))
                header, column = ["text"], 0
            else:
                # strict: an unclosed quote is an error at its line, not one row swallowing the rest of the file
                quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
                reader = csv.reader(handle, delimiter=delimiter, quoting=quoting, strict=delimiter == ",")
                header = next(reader, None)
                if not header:
                    raise InputError(f"'{path.name}' is empty: it needs a header row and at least one text row.")
                table, lines, row_end = [], [], reader.line_num
                for row in reader:
                    row_end = reader.line_num
                    if any(cell.strip() for cell in row):
                        table.append(row + [""] * (len(header) - len(row)))
                        lines.append(reader.line_num)
                        too_many(len(table))
                column = _text_column(header, table, path.name)
                for row, line in zip(table, lines):
                    if not row[column].strip():
                        raise InputError(f"'{path.name}' line {line}: the '{header[column]}' column is empty. "
                                         "Fill it in or delete the row.")
    except UnicodeDecodeError:
        raise InputError.keyed("upload.not_utf8", name=path.name) from None
    except csv.Error as exc:
        raise InputError(f"'{path.name}' is not a valid table: the row starting at line {row_end + 1} cannot be read "
                         f"({exc}). Check its quotes: a text holding a double quote must be quoted, with the quote "
                         "doubled.") from None
    if not table:
        raise InputError(f"'{path.name}' has no text rows.")
    return header, table, column


def _text_column(header: list[str], rows: list[list[str]], name: str) -> int:
    names = [cell.strip().lower() for cell in header]
    if "text" in names:
        return names.index("text")
    for index in range(len(header)):
        values = [row[index].strip() for row in rows if index < len(row) and row[index].strip()]
        if values and not all(re.fullmatch(r"[-+]?\d+(\.\d+)?", value) for value in values):
            return index
    raise InputError.keyed("classify.no_text_column", name=name)


def write_predictions(path: str | Path, header: list[str], rows: list[list[str]], results: Sequence[dict]) -> Path:
    """Write the table back with ``prediction`` and ``confidence`` columns (CSV unless .tsv)."""
    path = Path(path)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    keep = [i for i, name in enumerate(header) if name.strip().lower() not in ("prediction", "confidence")]
    table = [[header[i] for i in keep] + ["prediction", "confidence"]]
    for row, result in zip(rows, results):
        table.append([row[i] for i in keep] + [result["label"], f"{result['scores'][result['label']]:.4f}"])
    with path.open("w", encoding="utf-8", newline="") as handle:
        if delimiter == "\t":  # plain TSV, read back the way read_text_table reads it
            handle.writelines("\t".join(re.sub(r"[\t\r\n]+", " ", cell) for cell in row) + "\n" for row in table)
        else:
            csv.writer(handle, lineterminator="\n").writerows(table)
    return path
