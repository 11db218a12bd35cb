"""``load_dataset_file``: file -> canonical rows + validation report, and the train/validation split.

    from finetune.data import load_dataset_file
    loaded = load_dataset_file("finetune/samples/sentiment_en.csv")
    print(loaded.report.summary())
    loaded.raise_if_invalid()          # nothing is trained or saved while there are errors
    train, val = split_train_validation(loaded.rows, 0.1, seed=0)

Run ``pytest tests/test_data_readers.py tests/test_data_validation.py -q``.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from assistant.core.errors import InputError
from finetune.data.canonical import convert, row_text
from finetune.data.columns import ColumnMapping, detect_columns, guess_task
from finetune.data.readers import read_table
from finetune.data.sniff import FORMATS
from finetune.data.table import Limits, Table
from finetune.data.tags import entity_type
from finetune.data.validation import (LengthStats, Problem, ValidationReport, check_classes, check_duplicates,
                                      check_row_count)
from finetune.tasks import DATA_TASKS


@dataclass
class LoadedDataset:
    path: Path
    format: str
    columns: list[str]
    mapping: ColumnMapping
    task: str
    rows: list[dict[str, Any]]
    unlabelled: list[dict[str, Any]]
    report: ValidationReport
    preview: list[dict[str, Any]]
    fingerprint: str
    row_numbers: list[int] = field(default_factory=list)  # file line / record number of each canonical row

    def preview_table(self) -> dict[str, list]:
        """The preview as ``{"headers", "data"}``, the value shape ``gr.Dataframe`` takes."""
        headers = list(dict.fromkeys(k for record in self.preview for k in record))
        data = [["" if r.get(h) is None else r.get(h) for h in headers] for r in self.preview]
        return {"headers": headers, "data": data}

    def raise_if_invalid(self) -> None:
        """InputError listing the first errors, unless the report has none."""
        errors = self.report.errors
        if not errors:
            return
        shown = "; ".join(str(p) for p in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise InputError(f"{self.path.name} has {len(errors)} errors, so nothing was trained or saved: {shown}{more}. "
                         "Fix them and upload the file again.")


def load_dataset_file(path: str | Path, task: str | None = None, mapping: ColumnMapping | None = None,
                      limits: Limits = Limits(), *, tokenizer: Any = None,
                      entity_types: Sequence[str] | None = None) -> LoadedDataset:
    """Read, map, convert and validate a dataset file. Raises InputError for files that cannot be used at
    all; everything else (bad rows, too few rows, one class) is in ``report`` - call ``raise_if_invalid``.

    ``task``: one of DATA_TASKS, guessed from the columns when None. ``mapping``: overrides the detected columns.
    ``tokenizer``: adds token length statistics. ``entity_types``: allowed NER types (e.g. PER, ORG, LOC).
    """
    path = Path(path)
    table = read_table(path, limits)
    task = _resolve_task(table, task, mapping)
    if mapping is None:
        mapping = detect_columns(table.columns, task, table.records, table.name)
    mapping.check_columns(table.columns, table.name)
    conversion = convert(table, mapping, set(entity_types) if entity_types else None)
    report = _report(table, task, conversion, limits, tokenizer)
    identity = json.dumps({"task": task, "mapping": mapping.to_dict()}, sort_keys=True)
    fingerprint = hashlib.sha256((table.sha256 + identity).encode()).hexdigest()
    return LoadedDataset(path, table.format, table.columns, mapping, task, conversion.rows, conversion.unlabelled,
                         report, preview_records(table.records[: limits.preview_rows]), fingerprint,
                         conversion.numbers)


def _resolve_task(table: Table, task: str | None, mapping: ColumnMapping | None) -> str:
    if mapping is not None and task is not None and mapping.task != task:
        raise InputError(f"the column mapping is for task {mapping.task} but task {task} was chosen; pick one.")
    task = task or (mapping.task if mapping else None)
    if task is None:
        task = guess_task(table.columns, table.records, table.format)
        if task is None:
            raise InputError(f"{table.name}: cannot tell the task from the columns ({', '.join(table.columns)}). "
                             f"Choose the task ({', '.join(DATA_TASKS)}) and map the columns.")
    if task not in DATA_TASKS:
        raise InputError(f"unknown task '{task}'; choose one of {', '.join(DATA_TASKS)}.")
    return task


def _report(table: Table, task: str, conversion, limits: Limits, tokenizer: Any) -> ValidationReport:
    rows, numbers, unit = conversion.rows, conversion.numbers, table.unit
    problems = list(conversion.problems)
    report = ValidationReport(table.name, FORMATS[table.format], task, len(table.records) + table.skipped_rows,
                              len(rows), len(conversion.unlabelled), notes=table.notes + conversion.notes)
    if task in ("classification", "semi_supervised"):
        report.label_counts = dict(Counter(r["label"] for r in rows))
        first_rows: dict[str, int] = {}
        for row, number in zip(rows, numbers):
            first_rows.setdefault(row["label"], number)
        problems += check_classes(Counter(report.label_counts), first_rows, unit)
        if task == "semi_supervised" and not conversion.unlabelled:
            problems.append(_warning("no unlabelled rows (empty label): this is plain classification", unit))
    if task == "ner":
        report.tag_counts = dict(Counter(t for r in rows for t in r["tags"]))
        report.entity_counts = dict(Counter(entity_type(t) for r in rows for t in r["tags"] if t.startswith("B-")))
    everything = rows + [dict(r, label="") for r in conversion.unlabelled]
    problems += check_duplicates(task, everything, numbers + conversion.unlabelled_numbers, unit)
    what = "labelled examples" if task == "semi_supervised" else "usable examples"
    problems += check_row_count(len(rows), limits.min_rows, what)
    report.problems = sorted(problems, key=lambda p: (p.row is not None, p.row or 0))
    texts = [row_text(task, r) for r in rows] + [r["text"] for r in conversion.unlabelled]
    report.char_lengths = LengthStats.of([len(t) for t in texts])
    if tokenizer is not None and texts:
        report.token_lengths = LengthStats.of(token_counts(tokenizer, texts))
    return report


def _warning(message: str, unit: str) -> Problem:
    return Problem(None, None, message, "warning", unit)


def token_counts(tokenizer: Any, texts: list[str]) -> list[int]:
    """Tokens per text with a Hugging Face tokenizer (batched), a ``tokenizers.Tokenizer`` or any object
    with ``encode(text)`` returning a sequence."""
    if hasattr(tokenizer, "batch_encode_plus"):
        return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    counts = []
    for text in texts:
        try:
            encoded = tokenizer.encode(text, add_special_tokens=False)
        except TypeError:
            encoded = tokenizer.encode(text)
        counts.append(len(getattr(encoded, "ids", encoded)))
    return counts


def preview_records(records: list[dict], max_chars: int = 300) -> list[dict[str, Any]]:
    """Raw records as flat dicts of displayable scalars (lists shown space-joined or as JSON)."""
    def show(value: Any) -> Any:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = " ".join(value)
        elif isinstance(value, (list, dict)):
            value = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, bytes):
            value = f"<{len(value)} bytes>"
        if isinstance(value, str) and len(value) > max_chars:
            value = value[: max_chars - 1] + "…"
        return value

    return [{str(k): show(v) for k, v in record.items()} for record in records]


def split_train_validation(rows: Sequence[dict], fraction: float = 0.1, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Split rows into (train, validation), both in the original order. Stratified by ``label`` when the rows
    have one: every class with at least 2 rows gets at least 1 validation row and keeps 1 training row.

    Rows with the same ``prompt`` (KTO: a question's rated reply and its better answer) stay on one side, so no
    answer is trained on while its pair is held out, and held-out pairs can be compared; such a group counts as
    one unit, stratified by the set of labels it holds."""
    if not 0 <= fraction < 1:
        raise InputError(f"the validation fraction must be at least 0 and below 1; got {fraction}.")
    if fraction == 0 or len(rows) < 2:
        return list(rows), []
    rng = random.Random(seed)
    stratify = all("label" in r for r in rows)
    units: dict[Any, list[int]] = {}
    for index, row in enumerate(rows):
        key = ("prompt", json.dumps(row["prompt"], sort_keys=True, default=str)) if "prompt" in row else index
        units.setdefault(key, []).append(index)
    groups: dict[Any, list[list[int]]] = defaultdict(list)
    for members in units.values():
        kind = tuple(sorted({str(rows[i]["label"]) for i in members})) if stratify else None
        # a unit of one label is stratified by that label itself, so rows without a prompt split exactly as before
        groups[kind[0] if stratify and len(kind) == 1 else kind].append(members)
    val_indices: set[int] = set()
    for key in sorted(groups, key=str):
        members = groups[key]
        if len(members) < 2:
            continue
        take = min(len(members) - 1, max(1, round(len(members) * fraction)))
        for unit in rng.sample(members, take):
            val_indices.update(unit)
    train = [r for i, r in enumerate(rows) if i not in val_indices]
    val = [r for i, r in enumerate(rows) if i in val_indices]
    return train, val
