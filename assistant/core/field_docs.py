"""Read the docstring written under each dataclass field (litgpt style), for ``--help`` texts."""

from __future__ import annotations

import ast
import inspect


def field_docs(cls) -> dict[str, str]:
    """{field name: its docstring, on one line} for a dataclass defined in source."""
    tree = ast.parse(inspect.getsource(cls))
    body = tree.body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant):
            docs[node.target.id] = " ".join(str(after.value.value).split())
    return docs
