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


def project_modules() -> set[str]:
    paths = [*ROOT.glob("assistant/**/*.py"), *ROOT.glob("finetune/**/*.py"), ROOT / "app.py"]
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in paths}


def import_graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports, at the top or inside a function (``from pkg import mod``
    counts as importing ``pkg.mod``)."""
    modules, graph = project_modules(), {}
    for path in [*ROOT.glob("assistant/**/*.py"), *ROOT.glob("finetune/**/*.py"), ROOT / "app.py"]:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        targets = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            targets.update(name for name in names if name in modules and name != module)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
            elif child not in index:
                index[child] = low[child] = counter[0]
                counter[0] += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph.get(child, ())))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])
    return found


def test_cycles_finds_a_cycle_and_passes_a_chain():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)
