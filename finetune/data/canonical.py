"""Convert raw records to the canonical rows a trainer consumes, reporting every row that cannot be used.

Canonical rows per task:
  classification  {"text": str, "label": str}          (numeric labels stay strings: 1, 1.0 -> "1")
  semi_supervised {"text", "label"}; rows without a label go to ``unlabelled`` as {"text"}
  ner             {"tokens": [str], "tags": [str]}      (IOB2; BMES/BIOES/IOB1 converted)
  translation     {"source": str, "target": str}
  faq             {"question": str, "answer": str}      (a context/input column is appended to the question)
  instruction     {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]}
  unsupervised    {"text": str}
  preference      {"prompt": str, "chosen": str, "rejected": str}   (chosen == rejected is an error), or unpaired
                  {"prompt": str, "completion": str, "label": bool} (KTO; label true/false, 1/0, up/down, good/bad)
The converters live by kind of row: ``convert_labels`` (classification), ``convert_ner`` (NER tags),
``convert_text`` (the tasks made of texts); ``conversion`` holds what they report into.
Run ``pytest tests/test_data_validation.py -q``.
"""

from __future__ import annotations

from typing import Callable

from finetune.data.columns import ColumnMapping
from finetune.data.conversion import Conversion
from finetune.data.convert_labels import classification_rows
from finetune.data.convert_ner import ner_rows
from finetune.data.convert_text import (faq_rows, instruction_rows, preference_rows, translation_rows,
                                        unsupervised_rows)
from finetune.data.table import Table

_CONVERTERS: dict[str, Callable] = {"classification": classification_rows, "semi_supervised": classification_rows,
                                    "ner": ner_rows, "translation": translation_rows, "faq": faq_rows,
                                    "instruction": instruction_rows, "unsupervised": unsupervised_rows,
                                    "preference": preference_rows}


def convert(table: Table, mapping: ColumnMapping, entity_types: set[str] | None = None) -> Conversion:
    out = Conversion(unit=table.unit)
    out.problems.extend(table.problems)
    _CONVERTERS[mapping.task](table, mapping, out, entity_types)
    return out


def row_text(task: str, row: dict) -> str:
    """The text of a canonical row, for length statistics."""
    if task == "ner":
        return " ".join(row["tokens"])
    if task == "translation":
        return row["source"] + "\n" + row["target"]
    if task == "faq":
        return row["question"] + "\n" + row["answer"]
    if task == "instruction":
        return "\n".join(m["content"] for m in row["messages"])
    if task == "preference":
        if "completion" in row:
            return row["prompt"] + "\n" + row["completion"]
        return row["prompt"] + "\n" + max(row["chosen"], row["rejected"], key=len)
    return row["text"]
