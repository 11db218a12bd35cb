"""Tell Chinese text from the rest by its script: one rule for every module that needs it.

    from assistant.language import is_chinese
    is_chinese("这部电影很好看")   # True
"""

from __future__ import annotations

import re

HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")


def is_chinese(text: str) -> bool:
    """True when Han characters are at least a quarter as many as Latin letters (and there are some):
    a Chinese sentence with an English product name in it still counts as Chinese."""
    han = len(HAN.findall(text))
    return han > 0 and han * 4 >= len(LATIN.findall(text))
