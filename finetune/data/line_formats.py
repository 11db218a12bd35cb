"""Line formats: CoNLL (``token [...] tag`` per line, tab or space separated, a blank line between sentences,
``-DOCSTART-`` skipped; BMES/BIOES tags are converted to IOB2 later, in ``canonical``) and plain text (with blank
lines, each blank-line separated paragraph is one example, its lines joined with ``\\n`` so hard-wrapped prose
stays together; without, each line is one example). Row numbers are file lines.

Used by ``finetune.data.readers``; run ``pytest tests/test_data_readers.py -q -k "conll or text"``.
"""

from __future__ import annotations

from finetune.data.sniff import conll_fields, split_lines
from finetune.data.table import Limits, Table, count_row


def read_conll(name: str, text: str, limits: Limits) -> Table:
    """One record per sentence; its row number is the line of its first token (token i is on line start+i)."""
    records, numbers = [], []
    tokens: list[str] = []
    tags: list[str] = []
    start = 0
    for number, line in enumerate(split_lines(text), 1):
        if not line.strip(" \t") or line.startswith("-DOCSTART-"):
            if tokens:
                records.append({"tokens": tokens, "tags": tags})
                numbers.append(start)
                count_row(name, numbers, limits)
                tokens, tags = [], []
            continue
        parts = conll_fields(line)
        if not tokens:
            start = number
        tokens.append(parts[0])
        tags.append(parts[-1] if len(parts) > 1 else "")
    if tokens:
        records.append({"tokens": tokens, "tags": tags})
        numbers.append(start)
    return Table(name, "conll", ["tokens", "tags"], records, numbers, "line", "")


def read_text(name: str, text: str, limits: Limits) -> Table:
    lines = [ln.rstrip() for ln in split_lines(text)]
    by_paragraph = _has_inner_blank(lines)
    records, numbers = [], []
    block: list[str] = []
    start = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if block:
                records.append({"text": "\n".join(block)})
                numbers.append(start)
                count_row(name, numbers, limits)
                block = []
            continue
        if not block:
            start = number
        block.append(line)
        if not by_paragraph:
            records.append({"text": line})
            numbers.append(number)
            count_row(name, numbers, limits)
            block = []
    if block:
        records.append({"text": "\n".join(block)})
        numbers.append(start)
    note = "paragraphs separated by blank lines are the examples" if by_paragraph else "each line is one example"
    return Table(name, "text", ["text"], records, numbers, "line", "", notes=[f"plain text: {note}"])


def _has_inner_blank(lines: list[str]) -> bool:
    """A blank line between two non-blank lines (trailing blank lines at the end do not count)."""
    content = [i for i, ln in enumerate(lines) if ln.strip()]
    return bool(content) and any(not lines[i].strip() for i in range(content[0], content[-1]))
