"""The task vocabulary, defined once: what a run trains (``--task`` with a ``--method``) and what a data file
is read as (the same names, plus ``semi_supervised``), with the two translations between them.

    data_task("classification", "semi-supervised")  # -> "semi_supervised"
    task_and_method("semi_supervised")               # -> ("classification", "semi-supervised")
"""

from __future__ import annotations

from assistant.core.errors import InputError

TASKS = ("classification", "ner", "translation", "faq", "instruction", "unsupervised", "preference")
"""What an adapter learns (``--task``)."""
METHODS = ("supervised", "unsupervised", "semi-supervised", "preference")
"""How it learns (``--method``)."""
SEMI_SUPERVISED = "semi_supervised"
"""The data task of semi-supervised classification: labelled rows, plus rows whose label is empty."""
DATA_TASKS = (TASKS[0], SEMI_SUPERVISED, *TASKS[1:])
"""What a data file is read as: the training tasks, plus ``semi_supervised``."""

_OWN_TASK = {"unsupervised": "unsupervised", "preference": "preference", "semi-supervised": "classification"}
_OWN_METHOD = {"unsupervised": "unsupervised", "preference": "preference"}


def task_for_method(task: str, method: str) -> str:
    """The task ``method`` trains: unsupervised and preference have their own, semi-supervised is classification."""
    return _OWN_TASK.get(method, task)


def data_task(task: str, method: str) -> str:
    """The data task a file is read as for a run of ``task`` with ``method``."""
    return SEMI_SUPERVISED if method == "semi-supervised" else task_for_method(task, method)


def task_and_method(data_task_name: str) -> tuple[str, str]:
    """(task, method) that train on data read as ``data_task_name``."""
    if data_task_name == SEMI_SUPERVISED:
        return "classification", "semi-supervised"
    return data_task_name, _OWN_METHOD.get(data_task_name, "supervised")


def checked_task_and_method(task: str, method: str) -> tuple[str, str]:
    """``(task, method)`` when both are names this vocabulary knows, else InputError listing them."""
    if task not in TASKS:
        raise InputError(f"'task' must be one of {', '.join(TASKS)}; got '{task}'.")
    if method not in METHODS:
        raise InputError(f"'method' must be one of {', '.join(METHODS)}; got '{method}'.")
    return task, method
