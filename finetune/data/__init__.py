"""Dataset ingestion and validation for fine-tuning: an uploaded file in, canonical rows and a report out.

    from finetune.data import load_dataset_file, split_train_validation
    loaded = load_dataset_file(path)             # task guessed, columns detected
    loaded.raise_if_invalid()
    train, val = split_train_validation(loaded.rows, 0.1, seed=0)

Modules: ``readers`` (a file into a ``table``; per format ``delimited``, ``json_records``, ``line_formats``),
``columns`` (roles and mapping), ``canonical`` (conversion; per kind of row ``convert_labels``, ``convert_ner``,
``convert_text``), ``tags`` (NER tag schemes), ``validation`` (report), ``loader`` (the entry point and the split).
Tests: ``pytest tests/test_data_readers.py tests/test_data_validation.py tests/test_data_fuzz.py -q``.
"""

from finetune.data.columns import TASK_ROLES, ColumnMapping, detect_columns, guess_task
from finetune.data.loader import LoadedDataset, load_dataset_file, split_train_validation
from finetune.data.readers import read_table
from finetune.data.sniff import FORMATS
from finetune.data.table import Limits, Table
from finetune.data.tags import to_iob2
from finetune.data.validation import LengthStats, Problem, ValidationReport
from finetune.tasks import DATA_TASKS

__all__ = ["DATA_TASKS", "FORMATS", "TASK_ROLES", "ColumnMapping", "LengthStats", "Limits", "LoadedDataset", "Problem",
           "Table", "ValidationReport", "detect_columns", "guess_task", "load_dataset_file", "read_table",
           "split_train_validation", "to_iob2"]
