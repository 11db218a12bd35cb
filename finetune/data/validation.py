"""The validation report: problems found in a dataset, counts and length statistics.

Row-level problems come from the readers and from ``canonical`` (conversion); this module adds the
dataset-level checks (duplicates, number of classes, too few rows) and builds the
``ValidationReport`` that the UI shows (``to_markdown``) and the CLI prints (``summary``).
Tested by ``pytest tests/test_data_validation.py -q``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the data. ``row`` is 1-based (``unit`` says whether it is a file line
    or a record number); ``None`` for file-level problems."""

    row: int | None
    field: str | None
    message: str
    severity: str = "error"
    unit: str = "row"

    def __post_init__(self):
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, not {self.severity!r}")

    @property
    def where(self) -> str:
        return "" if self.row is None else f"{self.unit} {self.row}"

    def __str__(self) -> str:
        place = ", ".join(p for p in (self.where, f"field '{self.field}'" if self.field else "") if p)
        return f"{place}: {self.message}" if place else self.message


@dataclass(frozen=True)
class LengthStats:
    count: int
    min: int
    mean: float
    p95: int
    max: int

    @classmethod
    def of(cls, lengths: Sequence[int]) -> LengthStats | None:
        if not lengths:
            return None
        ordered = sorted(lengths)
        p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]  # nearest-rank percentile
        return cls(len(ordered), ordered[0], sum(ordered) / len(ordered), p95, ordered[-1])

    def __str__(self) -> str:
        return f"min {self.min} / mean {self.mean:.1f} / p95 {self.p95} / max {self.max}"


@dataclass
class ValidationReport:
    file: str
    format: str
    task: str
    total_rows: int
    valid_rows: int
    unlabelled_rows: int = 0
    label_counts: dict[str, int] = field(default_factory=dict)
    tag_counts: dict[str, int] = field(default_factory=dict)
    entity_counts: dict[str, int] = field(default_factory=dict)
    char_lengths: LengthStats | None = None
    token_lengths: LengthStats | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def dropped_rows(self) -> int:
        return max(0, self.total_rows - self.valid_rows - self.unlabelled_rows)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        lines = [
            f"{self.file} ({self.format}, task {self.task}): {self.total_rows} rows, {self.valid_rows} valid, "
            f"{self.dropped_rows} dropped" + (f", {self.unlabelled_rows} unlabelled" if self.unlabelled_rows else "")
        ]
        if self.label_counts:
            lines.append(f"{len(self.label_counts)} classes: " + _counts_text(self.label_counts))
        if self.entity_counts:
            lines.append("entities: " + _counts_text(self.entity_counts))
        if self.char_lengths:
            lines.append(f"length in characters: {self.char_lengths}")
        if self.token_lengths:
            lines.append(f"length in tokens: {self.token_lengths}")
        lines += [f"note: {n}" for n in self.notes]
        lines.append(f"{len(self.errors)} errors, {len(self.warnings)} warnings" + ("" if self.ok else " - fix the errors"))
        lines += [f"  {p.severity}: {p}" for p in self.problems[:10]]
        if len(self.problems) > 10:
            lines.append(f"  ... and {len(self.problems) - 10} more")
        return "\n".join(lines)

    def to_markdown(self, max_problems: int = 50) -> str:
        rows = [("File", self.file), ("Format", self.format), ("Task", self.task),
                ("Rows", f"{self.total_rows} (valid {self.valid_rows}, dropped {self.dropped_rows})")]
        if self.unlabelled_rows:
            rows.append(("Unlabelled rows", str(self.unlabelled_rows)))
        if self.char_lengths:
            rows.append(("Length (characters)", str(self.char_lengths)))
        if self.token_lengths:
            rows.append(("Length (tokens)", str(self.token_lengths)))
        rows.append(("Status", "OK" if self.ok else f"{len(self.errors)} errors"))
        out = ["| | |", "|---|---|"] + [f"| {k} | {_cell(v)} |" for k, v in rows]
        for title, counts in (("Label", self.label_counts), ("Entity type", self.entity_counts)):
            if counts:
                total = sum(counts.values()) or 1
                out += ["", f"| {title} | Count | Share |", "|---|---:|---:|"]
                out += [f"| {_cell(k)} | {v} | {v / total:.1%} |" for k, v in _sorted(counts)]
        if self.notes:
            out += [""] + [f"- {_cell(n)}" for n in self.notes]
        if self.problems:
            shown = self.problems[:max_problems]
            more = f" (first {len(shown)} of {len(self.problems)})" if len(self.problems) > len(shown) else ""
            out += ["", f"**Problems{more}**", "", "| Where | Field | Severity | Problem |", "|---|---|---|---|"]
            out += [f"| {p.where} | {_cell(p.field or '')} | {p.severity} | {_cell(p.message)} |" for p in shown]
        return "\n".join(out)


def _sorted(counts: dict[str, int]) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def _counts_text(counts: dict[str, int], limit: int = 12) -> str:
    items = _sorted(counts)
    text = ", ".join(f"{k} {v}" for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---- dataset-level checks ------------------------------------------------------------------------

def duplicate_key(task: str, row: dict[str, Any]) -> str:
    if task in ("classification", "semi_supervised", "unsupervised"):
        return " ".join(row["text"].split())
    return json.dumps(row, sort_keys=True, ensure_ascii=False)


def check_duplicates(task: str, rows: Sequence[dict], numbers: Sequence[int], unit: str) -> list[Problem]:
    """A warning for every row that repeats an earlier one (text for classification, whole row otherwise)."""
    first_seen: dict[str, tuple[int, dict]] = {}
    problems = []
    for row, number in sorted(zip(rows, numbers), key=lambda rn: rn[1]):
        key = duplicate_key(task, row)
        if key not in first_seen:
            first_seen[key] = (number, row)
            continue
        earlier, earlier_row = first_seen[key]
        message = f"duplicate of {unit} {earlier}"
        if "label" in row and "label" in earlier_row and row["label"] != earlier_row["label"]:
            message = f"same text as {unit} {earlier} but a different label ('{row['label']}' vs '{earlier_row['label']}')"
        problems.append(Problem(number, _main_field(task), message, "warning", unit))
    return problems


def _main_field(task: str) -> str | None:
    return {"classification": "text", "semi_supervised": "text", "unsupervised": "text", "ner": "tokens"}.get(task)


def check_classes(label_counts: Counter, first_rows: dict[str, int], unit: str) -> list[Problem]:
    problems = []
    if len(label_counts) < 2:
        found = f"only '{next(iter(label_counts))}'" if label_counts else "no labels"
        problems.append(Problem(None, "label", f"classification needs at least 2 classes; found {found}. "
                                "Add examples of the other classes or check the label column.", "error", unit))
        return problems
    rows = sum(label_counts.values())
    if rows >= 20 and len(label_counts) > rows / 2:
        problems.append(Problem(None, "label", f"{len(label_counts)} different labels in {rows} rows: is this "
                                "really the label column? Choose another one in the mapping.", "warning", unit))
        return problems
    for label, count in label_counts.items():
        if count == 1:
            problems.append(Problem(first_rows[label], "label", f"class '{label}' has only 1 example; it cannot be "
                                    "in both the training and the validation split - add more", "warning", unit))
    most, least = max(label_counts.values()), min(label_counts.values())
    if least > 1 and most / least >= 10:
        problems.append(Problem(None, "label", f"classes are very unbalanced (largest {most}, smallest {least} "
                                "rows); the model may ignore the small classes", "warning", unit))
    return problems


def check_row_count(usable: int, min_rows: int, what: str = "usable examples") -> list[Problem]:
    if usable >= min_rows:
        return []
    return [Problem(None, None, f"only {usable} {what}; at least {min_rows} are needed to fine-tune - add rows "
                    "(or lower Limits.min_rows)", "error")]
