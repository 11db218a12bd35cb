"""The layers and the one direction their imports point (docs/CONTRIBUTING.md):

    assistant.core      errors, files, languages, model sources, loading and running a model
    tasks               assistant.tasks (one module per task) and the FAQ they answer from
                        (assistant.faq, assistant.search_terms, assistant.search_settings)
    serving             the rest of assistant/ (chat, engines' users, documents, agent, OpenAI API)
    training            finetune/
    UI                  assistant.ui: builds on all of the above
    app.py              wires them; nothing imports it

    pytest tests/test_layers.py -q
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TASK_LAYER = ("assistant.tasks", "assistant.faq", "assistant.search_terms", "assistant.search_settings")


def layer(module: str) -> str:
    if module == "app":
        return "app"
    if module.startswith("finetune"):
        return "training"
    if module.startswith("assistant.core"):
        return "core"
    if module.startswith("assistant.ui"):
        return "ui"
    if any(module == name or module.startswith(name + ".") for name in TASK_LAYER):
        return "tasks"
    return "serving"


MAY_IMPORT = {"core": {"core"}, "tasks": {"core", "tasks"}, "serving": {"core", "tasks", "serving"},
              "training": {"core", "tasks", "training"}, "ui": {"core", "tasks", "serving", "training", "ui"},
              "app": {"core", "tasks", "serving", "training", "ui"}}


def project_imports():
    paths = [*ROOT.glob("assistant/**/*.py"), *ROOT.glob("finetune/**/*.py"), ROOT / "app.py"]
    for path in paths:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in ("assistant", "finetune", "app"):
                    yield module, name, f"{path.relative_to(ROOT)}:{node.lineno}"


def test_the_layer_rules_see_every_package():
    seen = {layer(module) for module, _, _ in project_imports()}
    assert seen == set(MAY_IMPORT), seen


@pytest.mark.parametrize("source_layer", sorted(MAY_IMPORT))
def test_imports_point_one_way(source_layer):
    wrong = [f"{where}: {module} ({source_layer}) imports {name} ({layer(name)})"
             for module, name, where in project_imports()
             if layer(module) == source_layer and layer(name) not in MAY_IMPORT[source_layer]]
    assert not wrong, "\n".join(wrong)
