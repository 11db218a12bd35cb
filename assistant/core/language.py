"""Tell Chinese text from the rest by its script: one rule for every module that needs it.

    from assistant.core.language import is_chinese, chinese_or_english
    is_chinese("这部电影很好看")                  # True
    chinese_or_english("LoRA 的秩怎么选？")        # "zh"

``HAN_CHARS`` is the character class of Han characters (CJK Unified Ideographs, extension A and the
compatibility ideographs), for modules that build their own tokenizing patterns from it.
"""

from __future__ import annotations

import re

HAN_CHARS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
HAN = re.compile(f"[{HAN_CHARS}]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def is_chinese(text: str) -> bool:
    """True when Han characters are at least a quarter as many as Latin letters (and there are some):
    a Chinese sentence with an English product name in it still counts as Chinese."""
    han = len(HAN.findall(text or ""))
    return han > 0 and han * 4 >= len(LATIN.findall(text or ""))


def chinese_or_english(text: str) -> str:
    """``zh`` for Chinese text (``is_chinese``), else ``en``: the two languages the FAQ and documents serve."""
    return "zh" if is_chinese(text) else "en"
