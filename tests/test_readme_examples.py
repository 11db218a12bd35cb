"""The README's API examples run as written against the running app, so docs and API cannot drift apart.

Every ```python block of README.md that uses ``gradio_client`` or ``openai`` is executed, statement by
statement, against the real app (the embedded SmolLM2 on llama.cpp, as the README's ``openai`` example
names it) started on a free loopback port. Only the URL ``http://127.0.0.1:7860/`` is replaced; the
keyword arguments, endpoint names and file paths (samples shipped in the repository) are the README's
own. Where a statement is followed by a ``# -> ...`` comment, the value it returns must have the type
and, for a dict, exactly the top-level keys that comment shows (for a list of dicts, each item's keys).

    HF_HUB_OFFLINE=1 python -m pytest -q tests/test_readme_examples.py
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from assistant.core.model_sources import DEFAULT_CHAT_MODEL
from tests.app_server import REPO_ROOT, running_app

README_URL = "http://127.0.0.1:7860/"
DOCUMENTS = ["README.md"]  # docs/design-notes.md has no API examples (checked in test_every_api_example_is_found)
CLIENTS = ("gradio_client", "openai")


def api_examples(document: str) -> list[tuple[int, str]]:
    """(first line number in the file, code) of each ```python block that uses one of ``CLIENTS``."""
    text = (REPO_ROOT / document).read_text(encoding="utf-8")
    found = []
    for match in re.finditer(r"^```python\n(.*?)^```", text, re.DOTALL | re.MULTILINE):
        code = match.group(1)
        if any(re.search(rf"\b(from|import) {client}\b", code) for client in CLIENTS):
            found.append((text.count("\n", 0, match.start(1)) + 1, code))
    return found


def expected_shape(comment: str):
    """The type (and keys) a ``# -> ...`` comment promises: ("str", None), ("dict", keys), ("list", item keys)."""
    shown = comment.strip()
    if shown.startswith("str"):
        return "str", None
    if shown.startswith("["):
        inner = shown[1:].lstrip()
        return "list", top_level_keys(inner) if inner.startswith("{") else None
    if shown.startswith("{"):
        return "dict", top_level_keys(shown)
    raise AssertionError(f"'# -> {comment}' shows no type this test knows (str, [...], {{...}})")


def top_level_keys(literal: str) -> set[str]:
    """The quoted names directly inside the first {...} of ``literal`` that open an entry (after ``{`` or
    ``,``): keys of ``{"label": "x", "scores": {...}}`` and members of ``{"job_id", "run_id"}``."""
    keys, depth, previous, i = set(), 0, "", 0
    while i < len(literal):
        char = literal[i]
        if char == '"':
            end = literal.index('"', i + 1)
            if depth == 1 and previous in "{,":
                keys.add(literal[i + 1:end])
            previous, i = '"', end + 1
            continue
        if char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
            if depth == 0:
                return keys
        if not char.isspace():
            previous = char
        i += 1
    raise AssertionError(f"unbalanced braces in the README comment {literal!r}")


def promised(lines: list[str], statement: ast.stmt) -> str | None:
    """The ``# -> ...`` comment at the end of ``statement``'s last line or alone on the line after it."""
    last = lines[statement.end_lineno - 1]
    if "# ->" in last[statement.end_col_offset:]:
        return last[statement.end_col_offset:].split("# ->", 1)[1]
    following = lines[statement.end_lineno].strip() if statement.end_lineno < len(lines) else ""
    return following[len("# ->"):] if following.startswith("# ->") else None


def check_shape(value, comment: str, where: str) -> None:
    kind, keys = expected_shape(comment)
    assert type(value).__name__ == kind, f"{where}: README shows {kind}, the endpoint returned {value!r}"
    items = [value] if kind == "dict" else (value if keys is not None else [])
    for item in items:
        assert set(item) == keys, f"{where}: README shows keys {sorted(keys)}, the endpoint returned {sorted(item)}"


def run_example(document: str, first_line: int, code: str, url: str) -> None:
    """Execute ``code`` statement by statement with the app's URL, checking each ``# ->`` promise."""
    assert README_URL in code, f"{document}:{first_line}: the example does not talk to {README_URL}"
    code = code.replace(README_URL, url)
    lines, namespace = code.splitlines(), {"__name__": "readme_example"}
    for statement in ast.parse(code).body:
        where = f"{document}:{first_line + statement.lineno - 1}"
        module = ast.Module([statement], type_ignores=[])
        if isinstance(statement, ast.Expr):
            value = eval(compile(ast.Expression(statement.value), where, "eval"), namespace)
        else:
            exec(compile(module, where, "exec"), namespace)
            targets = getattr(statement, "targets", [])
            value = namespace[targets[0].id] if len(targets) == 1 and isinstance(targets[0], ast.Name) else None
        comment = promised(lines, statement)
        if comment is not None:
            check_shape(value, comment, where)


def test_every_api_example_is_found():
    """The extraction sees the README's four API blocks, and no other document has API examples."""
    assert [code.split("\n", 1)[0] for _, code in api_examples("README.md")] == [
        "from gradio_client import Client, handle_file", "from gradio_client import Client, handle_file",
        "import httpx", "from openai import OpenAI"]
    for document in Path(REPO_ROOT, "docs").glob("*.md"):
        assert not api_examples(str(document.relative_to(REPO_ROOT))), f"{document} has API examples: add it above"


def test_the_comment_shapes_are_read_as_written():
    assert expected_shape(' {"label": "positive", "scores": {"positive": 0.93, "negative": 0.07}}') == (
        "dict", {"label", "scores"})
    assert expected_shape(' {"job_id", "run_id"}') == ("dict", {"job_id", "run_id"})
    assert expected_shape(' [{"text": "A", "type": "PER", "start": 0, "end": 1}, ...]') == (
        "list", {"text", "type", "start", "end"})
    assert expected_shape(" str") == ("str", None)
    with pytest.raises(AssertionError, match="README shows keys"):
        check_shape({"answer": "x"}, ' {"answer": "...", "sources": []}', "README.md:1")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    env = {"ASSISTANT_DATA_DIR": str(tmp_path_factory.mktemp("readme-data")), "ASSISTANT_MODEL": DEFAULT_CHAT_MODEL}
    with running_app(env=env) as url:  # the examples name the default model, as a new user's app serves it
        yield url


@pytest.mark.real
@pytest.mark.parametrize("document, first_line, code",
                         [(doc, line, code) for doc in DOCUMENTS for line, code in api_examples(doc)],
                         ids=lambda value: f"line{value}" if isinstance(value, int) else None)
def test_the_example_runs_as_written(document, first_line, code, app_url, monkeypatch):
    if "openai" in code:
        pytest.importorskip("openai")
    monkeypatch.chdir(REPO_ROOT)  # the examples name files relative to a checkout of the repository
    run_example(document, first_line, code, app_url)
