"""Refusals a training API caller can act on: they never see the tab's report, so the message itself
names the unknown task or method and quotes the first row errors."""

import json

import pytest

from assistant.core.errors import InputError
from assistant.ui.finetune_forms import check_ready, inspect_dataset
from finetune.tasks import METHODS, TASKS, checked_task_and_method


@pytest.mark.parametrize("task, method, named", [("sentiment", "supervised", "'task' must be one of"),
                                                 ("classification", "magic", "'method' must be one of")])
def test_an_unknown_task_or_method_is_named_with_the_choices(task, method, named):
    with pytest.raises(InputError, match=named) as refused:
        checked_task_and_method(task, method)
    assert ", ".join(TASKS if "task" in named else METHODS) in str(refused.value)


def test_known_names_pass():
    assert checked_task_and_method("preference", "preference") == ("preference", "preference")


def test_a_file_with_row_errors_is_refused_with_those_rows_quoted(tmp_path):
    rows = [{"prompt": "Say hi", "chosen": "Hi!", "rejected": "Go away."}, {"prompt": "Say bye", "chosen": "Bye!"},
            {"prompt": "", "chosen": "x", "rejected": "y"}]
    path = tmp_path / "prefs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    view = inspect_dataset(path, "preference")
    assert not view.ok and view.first_errors
    with pytest.raises(InputError) as refused:
        check_ready(view)
    message = str(refused.value)
    assert "prefs.jsonl cannot be trained on" in message and "report" not in message
    assert view.first_errors[0] in message
