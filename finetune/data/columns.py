"""Which column plays which role for a task: detection from column names (and values), and the
``ColumnMapping`` the UI shows and the user can override.

Roles per task (``TASK_ROLES``; for ``instruction`` one of two layouts):
classification / semi_supervised: text, label - ner: tokens, tags - translation: source, target -
faq: question, answer (+ context) - instruction: messages (OpenAI ``role/content`` or ShareGPT
``from/value`` turns) or prompt, response (+ input, system) - unsupervised: text -
preference: prompt, chosen, rejected (DPO / ORPO / KTO pairs) or prompt, completion, label (unpaired thumbs up /
down for KTO: label true/false, 1/0, up/down, good/bad).
Run ``pytest tests/test_data_readers.py -q -k column``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from assistant.core.errors import InputError
from finetune.tasks import DATA_TASKS

# task -> layouts; each layout is (required roles, optional roles)
TASK_ROLES: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "classification": [(("text", "label"), ())],
    "semi_supervised": [(("text", "label"), ())],
    "ner": [(("tokens", "tags"), ())],
    "translation": [(("source", "target"), ())],
    "faq": [(("question", "answer"), ("context",))],
    "instruction": [(("messages",), ()), (("prompt", "response"), ("input", "system"))],
    "unsupervised": [(("text",), ())],
    "preference": [(("prompt", "chosen", "rejected"), ()), (("prompt", "completion", "label"), ())],
}
ALIASES: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "review", "content", "document", "body", "comment", "tweet", "utterance", "text_a",
             "review_text", "passage", "paragraph", "文本", "句子", "内容", "评论", "正文"),
    "label": ("label", "labels", "class", "category", "sentiment", "polarity", "topic", "intent", "target", "y",
              "标签", "类别", "情感", "分类", "label_text"),
    "tokens": ("tokens", "words", "token", "chars", "characters", "字", "词"),
    "tags": ("tags", "ner_tags", "ner", "tag", "labels", "label", "bio", "iob", "标签"),
    "source": ("source", "src", "source_text", "src_text", "input_text", "原文", "源"),
    "target": ("target", "tgt", "target_text", "tgt_text", "translation", "reference", "译文", "目标"),
    "question": ("question", "q", "query", "instruction", "prompt", "问题", "问"),
    "answer": ("answer", "a", "response", "output", "completion", "reply", "答案", "回答", "答"),
    "context": ("input", "context", "背景", "上下文"),
    "prompt": ("instruction", "prompt", "question", "query", "q", "指令", "问题"),
    "response": ("output", "response", "answer", "completion", "a", "答案", "回答", "输出"),
    "input": ("input", "context", "输入"),
    "system": ("system", "system_prompt"),
    "chosen": ("chosen", "preferred", "good", "winner", "accepted", "chosen_response", "好", "更好", "优选"),
    "rejected": ("rejected", "dispreferred", "bad", "loser", "rejected_response", "差", "更差", "拒绝"),
    "completion": ("completion", "response", "answer", "output", "reply", "回答", "答案"),
    "messages": ("messages", "conversations", "conversation", "dialog", "dialogue", "chat", "turns"),
}
LANGUAGE_CODES = {"en", "de", "zh", "fr", "es", "it", "pt", "ru", "ja", "ko", "ar", "nl", "sv", "pl", "tr", "cs",
                  "ro", "fi", "da", "no", "nb", "el", "hu", "he", "hi", "vi", "th", "uk", "bg", "et", "lt",
                  "lv", "sk", "sl", "hr", "fa", "ms", "ca", "cmn", "yue", "eng", "deu", "fra", "zho"}
LANGUAGE_NAMES = {"english", "german", "chinese", "french", "spanish", "italian", "japanese", "korean", "russian",
                  "portuguese", "arabic", "dutch", "英文", "中文", "英语", "汉语", "德语"}
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_LANG_RE = re.compile(r"^(?:(?:text|sentence|src|tgt|source|target|translation)[._-])?"
                      r"(?P<code>[a-z]{2,3})(?:[-_][a-z]{2,4})?$")


@dataclass
class ColumnMapping:
    """task + role -> column name, plus optional label names (e.g. {"0": "negative", "1": "positive"};
    a list is taken as names for 0, 1, 2, ...). For ``ner`` label names map numeric tags to tag names."""

    task: str
    roles: dict[str, str]
    label_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self):
        if self.task not in DATA_TASKS:
            raise InputError(f"unknown task '{self.task}'; choose one of {', '.join(DATA_TASKS)}.")
        if isinstance(self.label_names, (list, tuple)):
            self.label_names = {str(i): str(name) for i, name in enumerate(self.label_names)}
        self.label_names = {str(k): str(v) for k, v in (self.label_names or {}).items()}
        self.roles = {str(k): str(v) for k, v in self.roles.items() if v not in (None, "")}
        self.layout()  # raises when the roles fit no layout of the task

    def layout(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        for required, optional in TASK_ROLES[self.task]:
            if all(r in self.roles for r in required) and set(self.roles) <= set(required) | set(optional):
                return required, optional
        wanted = " or ".join("+".join(req) + (f" (optional {', '.join(opt)})" if opt else "")
                             for req, opt in TASK_ROLES[self.task])
        raise InputError(f"the column mapping for task {self.task} needs the roles {wanted}; got "
                         f"{', '.join(self.roles) or 'none'}.")

    def check_columns(self, columns: Sequence[str], file_name: str) -> None:
        missing = [f"{role} -> '{col}'" for role, col in self.roles.items() if col not in columns]
        if missing:
            raise InputError(f"{file_name}: the mapping names columns that are not in the file ({', '.join(missing)}). "
                             f"Columns are: {', '.join(columns)}.")

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "roles": dict(self.roles), "label_names": dict(self.label_names)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnMapping:
        return cls(data["task"], dict(data.get("roles") or {}), dict(data.get("label_names") or {}))


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(name).strip().lower())


def find_column(columns: Sequence[str], role: str, exclude: Sequence[str] = ()) -> str | None:
    """The first column (in alias priority order) whose name is an alias of the role."""
    by_norm: dict[str, str] = {}
    for column in columns:
        if column not in exclude:
            by_norm.setdefault(_norm(column), column)
            by_norm.setdefault(_norm(column.rsplit(".", 1)[-1]), column)  # flattened "data.text"
    return next((by_norm[a] for a in ALIASES[role] if a in by_norm), None)


def language_columns(columns: Sequence[str]) -> list[str]:
    found = []
    for column in columns:
        name = _norm(column).rsplit(".", 1)[-1]
        match = _LANG_RE.match(name)
        if (match and match["code"] in LANGUAGE_CODES) or name in LANGUAGE_NAMES:
            found.append(column)
    return found


def _values(records: Sequence[dict] | None, column: str, limit: int = 200) -> list[Any]:
    return [r.get(column) for r in (records or [])[:limit] if r.get(column) is not None]


def _is_list_column(records: Sequence[dict] | None, column: str) -> bool:
    values = _values(records, column)
    return bool(values) and all(isinstance(v, list) or _looks_like_json_list(v) for v in values)


def _looks_like_json_list(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip().startswith("["):
        return False
    try:
        return isinstance(json.loads(value), list)
    except (ValueError, RecursionError):
        return False


def _text_columns(columns: Sequence[str], records: Sequence[dict] | None) -> list[str]:
    """Columns of prose (strings, mostly not numbers, 8+ characters on average), longest first."""
    scored = []
    for column in columns:
        values = _values(records, column)
        if not values or not all(isinstance(v, str) for v in values):
            continue
        mean = sum(len(v) for v in values) / len(values)
        numeric = sum(1 for v in values if _NUMBER_RE.match(v.strip()))
        if mean >= 8 and numeric < len(values) / 2:
            scored.append((-mean, column))
    return [c for _, c in sorted(scored)]


def detect_roles(columns: Sequence[str], task: str, records: Sequence[dict] | None = None) -> dict[str, str] | None:
    """Role -> column for the task, or None when a required role has no column."""
    for required, optional in TASK_ROLES[task]:
        roles: dict[str, str] = {}
        for role in required + optional:
            column = _find_for_role(columns, role, task, records, list(roles.values()))
            if column:
                roles[role] = column
        if all(r in roles for r in required):
            return roles
    return None


def _find_for_role(columns, role, task, records, taken) -> str | None:
    if role == "messages":
        column = find_column(columns, role, taken)
        return column if column and (records is None or _is_list_column(records, column)) else None
    if task == "ner":
        lists = [c for c in columns if c not in taken and (records is None or _is_list_column(records, c))]
        column = find_column(lists, role) or find_column(columns, role, taken)
        if column is None and lists and len(lists) == (2 if role == "tokens" else 1):
            column = lists[0]
        return column
    column = find_column(columns, role, taken)
    if column is None and task == "translation":
        languages = [c for c in language_columns(columns) if c not in taken]
        column = languages[0] if languages else None
    if column is None and role == "text" and task in ("classification", "semi_supervised", "unsupervised"):
        texts = [c for c in _text_columns(columns, records) if c not in taken and c != find_column(columns, "label")]
        column = texts[0] if texts else None
    if column is None and role == "label" and records:
        others = [c for c in columns if c not in taken]
        column = others[0] if len(others) == 1 else None
    return column


def detect_columns(columns: Sequence[str], task: str, records: Sequence[dict] | None = None,
                   file_name: str = "the file") -> ColumnMapping:
    if task not in DATA_TASKS:
        raise InputError(f"unknown task '{task}'; choose one of {', '.join(DATA_TASKS)}.")
    roles = detect_roles(columns, task, records)
    if roles is None:
        wanted = " or ".join(" + ".join(req) for req, _ in TASK_ROLES[task])
        raise InputError(f"{file_name}: cannot find the columns for task {task} (needs {wanted}) among: "
                         f"{', '.join(columns) or 'no columns'}. Rename the columns (e.g. '{TASK_ROLES[task][0][0][0]}') "
                         "or choose them in the column mapping.")
    return ColumnMapping(task, roles)


def empty_label_share(records: Sequence[dict], column: str) -> float:
    if not records:
        return 0.0
    return sum(1 for r in records if r.get(column) is None or str(r.get(column)).strip() == "") / len(records)


def guess_task(columns: Sequence[str], records: Sequence[dict] | None = None, format: str | None = None) -> str | None:
    """The most likely task for these columns (and values, if given), or None when nothing fits."""
    if format == "conll":
        return "ner"
    if format == "text":
        return "unsupervised"
    names = {_norm(c).rsplit(".", 1)[-1] for c in columns}
    if find_column(columns, "chosen") and find_column(columns, "rejected"):
        return "preference"
    if {"prompt", "completion"} <= names and find_column(columns, "label"):
        return "preference"  # unpaired: thumbs up / down per completion (KTO)
    if _find_for_role(columns, "messages", "instruction", records, []):
        return "instruction"
    if (records is not None and detect_roles(columns, "ner", records)) or (
            names & {"tokens", "words"} and names & {"tags", "ner_tags"}):
        return "ner"
    if names & {"instruction", "prompt", "指令"} and names & {"output", "response", "completion", "输出"}:
        return "instruction"
    if names & {"question", "q", "query", "问题", "问"} and names & {"answer", "a", "response", "reply", "答案", "回答", "答"}:
        return "faq"
    if (find_column(columns, "source") and find_column(columns, "target")) or len(language_columns(columns)) >= 2:
        return "translation"
    text, label = find_column(columns, "text"), find_column(columns, "label")
    if records is not None and len(columns) == 2 and not (text and label):
        text = text or next((c for c in _text_columns(columns, records) if c != label), None)
        others = [c for c in columns if c != text]
        label = label or (others[0] if len(others) == 1 and _few_distinct(records, others[0]) else None)
    if text and label:
        return "semi_supervised" if records and empty_label_share(records, label) >= 0.1 else "classification"
    if text or (records is not None and len(columns) == 1 and _text_columns(columns, records)):
        return "unsupervised"
    return None


def _few_distinct(records: Sequence[dict], column: str) -> bool:
    values = [str(v) for v in _values(records, column, 1000)]
    return bool(values) and len(set(values)) <= min(50, len(values) / 2)
