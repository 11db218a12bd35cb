"""Agent routing accuracy on the project's routing set (bench/data/agent_routing.jsonl: 72 messages in
English and Chinese, written for the project, a quarter of them needing no tool), per split.

    python bench/agent_routing.py              # the test split (never used for tuning)
    python bench/agent_routing.py --split dev  # the split the cues and thresholds were tuned on

Prints accuracy per split and language, and every message the router got wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.agent_router import AgentRouter  # noqa: E402
from assistant.core.language import is_chinese  # noqa: E402

ROUTING_SET = REPO / "bench" / "data" / "agent_routing.jsonl"


def load(split: str) -> list[dict]:
    rows = [json.loads(line) for line in ROUTING_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if split == "all" or row["split"] == split]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=("dev", "test", "all"))
    args = parser.parse_args()

    from assistant.faq.embeddings import default_encoder
    from assistant.faq.knowledge_base import load_builtin
    from assistant.tasks.faq import FaqRouter

    router = AgentRouter(FaqRouter(load_builtin()), default_encoder())
    rows, right, wrong = load(args.split), Counter(), []
    for row in rows:
        got = router.route(row["message"]).tool
        language = "zh" if is_chinese(row["message"]) else "en"
        right[language, got == row["tool"]] += 1
        if got != row["tool"]:
            wrong.append(f"  expected {row['tool']}, got {got}: {row['message']}")
    total = sum(right.values())
    correct = right["en", True] + right["zh", True]
    print("| split | messages | accuracy | English | Chinese |\n|---|---|---|---|---|")
    per = {lang: f"{right[lang, True]}/{right[lang, True] + right[lang, False]}" for lang in ("en", "zh")}
    print(f"| {args.split} | {total} | {correct / total:.3f} | {per['en']} | {per['zh']} |")
    if wrong:
        print("\nmisrouted:\n" + "\n".join(wrong))
    print(f"\ncommand: python bench/agent_routing.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
