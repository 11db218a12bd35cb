"""The NLP tasks, one module each; every module owns its prompt, parser and metric.

A task module exposes ``TASK_NAME``, ``PROMPT_VERSION``, ``build_messages``, ``training_example``,
``parse_output`` and ``evaluate`` (see docs in each module). Look them up by name:

    from assistant.tasks import get_task, available_tasks
    ner = get_task("ner")

    python -m assistant.tasks --help      # the command-line runner (classify / ner / translate)
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from assistant.core.errors import InputError

TASK_MODULES = {
    "classification": "assistant.tasks.classification",
    "ner": "assistant.tasks.ner",
    "translation": "assistant.tasks.translation",
    "faq": "assistant.tasks.faq",  # written separately; listed only when present
}


def _present(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except ModuleNotFoundError:
        return False


def available_tasks() -> list[str]:
    """Names of the task modules installed here (imports nothing)."""
    return [name for name, module in TASK_MODULES.items() if _present(module)]


def get_task(name: str) -> ModuleType:
    """The task module called ``name`` (imported on first use)."""
    module = TASK_MODULES.get((name or "").strip().lower())
    if module is None or not _present(module):
        raise InputError(f"Unknown task '{name}'. Available tasks: {', '.join(available_tasks())}.")
    return importlib.import_module(module)
