"""BM25 terms for English and Chinese text, shared by FAQ and document retrieval.

English: lowercase words, stop words dropped, a light suffix strip (-s/-es/-ed/-ing). Chinese: words
from the ``jieba`` segmenter (its dictionary ships with the package; no download), in search mode so a
long compound in its dictionary also yields its parts (人工智能 -> 人工, 智能, 人工智能), Chinese stop words dropped.
Plain jieba words found the right FAQ entry more often than characters + bigrams (the earlier
tokenizer) or words mixed with characters or bigrams (bench/README.md, "FAQ retrieval"). jieba builds its
prefix dictionary on first use (cached in the temp folder afterwards).

    python -m assistant.search_terms "微调时出现过拟合怎么办？ How do I stop overfitting?"
"""

from __future__ import annotations

import logging
import re
import sys
import threading

from assistant.core.language import HAN, HAN_CHARS

EN_STOP_WORDS = frozenset({
    "a", "an", "the", "of", "to", "in", "on", "for", "and", "or", "is", "are", "was", "were", "be", "been",
    "being", "do", "does", "did", "i", "my", "me", "you", "your", "it", "its", "this", "that", "these", "those",
    "what", "which", "who", "how", "why", "when", "where", "can", "could", "should", "would", "will", "with",
    "by", "as", "at", "from", "about", "into", "than", "then", "so", "if", "not", "no", "there", "their",
    "they", "we", "our", "us", "any", "some"
})
ZH_STOP_WORDS = frozenset(
    "的 了 是 在 和 与 及 或 吗 呢 吧 啊 呀 么 嘛 我 你 他 她 它 我们 你们 他们 这 那 这个 那个 这些 那些 "
    "什么 怎么 怎样 怎么样 如何 为什么 为何 哪些 哪个 哪 多少 几 有 没有 要 会 能 可以 应该 该 就 都 也 还 "
    "又 再 把 被 让 给 对 从 到 上 下 中 里 时 时候 一个 一些 一下 一种 个 些 种 之 其 而 且 并 但 但是 "
    "如果 因为 所以 比较 一般 具体 到底 究竟 请问 请 是不是 有没有 能不能 不 没 啥 干什么 干嘛 东西 事 回事 怎么办 办".split())
_TOKEN = re.compile(f"[{HAN_CHARS}]+|" r"[A-Za-z0-9]+(?:[-_.][A-Za-z0-9]+)*")
_JIEBA_LOCK = threading.Lock()
_segmenter = None


def _jieba():
    """The jieba tokenizer, initialised once (thread-safe; jieba's own lazy init is not)."""
    global _segmenter
    if _segmenter is None:
        with _JIEBA_LOCK:
            if _segmenter is None:
                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                _segmenter = tokenizer
    return _segmenter


def chinese_words(run: str) -> list[str]:
    """jieba's search-mode words of a run of Chinese characters, without stop words."""
    return [w for w in _jieba().cut_for_search(run) if w.strip() and w not in ZH_STOP_WORDS]


def strip_suffix(word: str) -> str:
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def terms(text: str) -> list[str]:
    """The BM25 terms of ``text`` (English words and Chinese words, in order of appearance)."""
    found = []
    for match in _TOKEN.finditer(text or ""):
        run = match.group()
        if HAN.match(run):
            found.extend(chinese_words(run))
        elif (word := run.lower()) not in EN_STOP_WORDS:
            found.append(strip_suffix(word))
    return found


if __name__ == "__main__":
    print(terms(" ".join(sys.argv[1:]) or "微调时出现过拟合怎么办？ How do I stop overfitting?"))
