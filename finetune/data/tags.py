"""NER tag schemes: convert BMES / BIOES / BILOU / IOB1 tag sequences to IOB2.

IOB2: every entity starts with ``B-TYPE`` and continues with ``I-TYPE``; ``O`` is outside.
``M-``/``E-``/``L-`` continue an entity (-> ``I-``), ``S-``/``U-`` are one-token entities (-> ``B-``).
An ``I-`` (or ``M-``/``E-``) that does not continue an entity of the same type is turned into ``B-`` and
reported, so IOB1 files come out as IOB2. Run ``pytest tests/test_data_validation.py -q -k tag``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG_RE = re.compile(r"^(?P<prefix>[BIESMLU])-(?P<type>\S+)$")
CONTINUE = {"I", "M", "E", "L"}
SINGLE = {"S", "U"}


@dataclass
class TagConversion:
    tags: list[str]
    started_entity: list[int] = field(default_factory=list)  # indices of I- without B- (fixed to B-)
    unknown: list[int] = field(default_factory=list)  # indices of tags that are not O / X-TYPE


def scheme_of(tag_lists: list[list[str]]) -> str:
    """'bioes' when any tag uses E-/S-/M-/L-/U- (BMES, BIOES, BILOU), else 'iob'."""
    for tags in tag_lists:
        for tag in tags:
            match = TAG_RE.match(tag) if isinstance(tag, str) else None
            if match and match["prefix"] not in ("B", "I"):
                return "bioes"
    return "iob"


def to_iob2(tags: list[str]) -> TagConversion:
    out: list[str] = []
    result = TagConversion(out)
    for index, tag in enumerate(tags):
        previous = out[-1] if out else "O"
        if tag == "O":
            out.append("O")
            continue
        match = TAG_RE.match(tag)
        if not match:
            result.unknown.append(index)
            out.append(tag)
            continue
        prefix, kind = match["prefix"], match["type"]
        if prefix in SINGLE or prefix == "B":
            out.append(f"B-{kind}")
        elif previous in (f"B-{kind}", f"I-{kind}"):
            out.append(f"I-{kind}")
        else:
            result.started_entity.append(index)
            out.append(f"B-{kind}")
    return result


def entity_type(tag: str) -> str | None:
    match = TAG_RE.match(tag)
    return match["type"] if match else None


def tag_hint(tag: str) -> str:
    if tag == "0":
        return " (the letter O, not zero?)"
    if re.match(r"^[biesmlu]-", tag):
        return f" (use an upper-case prefix: {tag[0].upper()}{tag[1:]})"
    if re.match(r"^[BIESMLU]_", tag):
        return f" (use a dash: {tag[0]}-{tag[2:]})"
    return ""
