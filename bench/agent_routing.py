"""Agent routing accuracy on the project's routing set (bench/data/agent_routing.jsonl: 72 messages in
English and Chinese, written for the project, a quarter of them needing no tool), per split.

    python bench/agent_routing.py                   # the project's router on the test split (never tuned on)
    python bench/agent_routing.py --split dev       # the split the cues and thresholds were tuned on
    python bench/agent_routing.py --router native   # the chat model picks the tool itself (default model)
    python bench/agent_routing.py --router native --model smollm2-135m-instruct

``--router project`` is ``AgentRouter`` (cues, the FAQ's retrieval score, MiniLM similarity to example
requests); ``--router native`` is ``NativeToolRouter``: the model, served as the app serves it
(``load_served_model``), picks from the tools its own chat template renders, which is what the app uses
for a model whose template takes tools on llama.cpp (app.py, ``load_services``). Prints accuracy per split
and language, the time per message, and every message the router got wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from assistant.agent_router import AgentRouter, NativeToolRouter, takes_tools  # noqa: E402
from assistant.core.language import is_chinese  # noqa: E402
from assistant.core.model_sources import DEFAULT_CHAT_MODEL  # noqa: E402

ROUTING_SET = REPO / "bench" / "data" / "agent_routing.jsonl"


def load(split: str) -> list[dict]:
    rows = [json.loads(line) for line in ROUTING_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [row for row in rows if split == "all" or row["split"] == split]


def build_router(kind: str, model: str):
    """(router, what it is, in words) for ``--router``."""
    if kind == "project":
        from assistant.faq.embeddings import default_encoder
        from assistant.faq.knowledge_base import load_builtin
        from assistant.tasks.faq import FaqRouter

        faq = FaqRouter(load_builtin())
        faq.warm().join()  # the FAQ index is built before the clock starts
        return AgentRouter(faq, default_encoder()), "project router (AgentRouter)"
    from assistant.core.loading import load_served_model

    loaded = load_served_model(model)
    if not takes_tools(loaded.tokenizer) or loaded.engine_name != "llama.cpp":
        raise SystemExit(f"--router native needs a model whose chat template takes tools, served on llama.cpp; "
                         f"got {loaded.describe()} (template takes tools: {takes_tools(loaded.tokenizer)}).")
    return NativeToolRouter(loaded), f"native tool choice (NativeToolRouter), {loaded.describe()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="test", choices=("dev", "test", "all"))
    parser.add_argument("--router", default="project", choices=("project", "native"),
                        help="project: AgentRouter; native: the chat model picks the tool (its template's tools)")
    parser.add_argument("--model", default=DEFAULT_CHAT_MODEL, help="the chat model for --router native")
    args = parser.parse_args()

    router, described = build_router(args.router, args.model)
    rows, right, wrong = load(args.split), Counter(), []
    started = time.perf_counter()
    for row in rows:
        got = router.route(row["message"]).tool
        language = "zh" if is_chinese(row["message"]) else "en"
        right[language, got == row["tool"]] += 1
        if got != row["tool"]:
            wrong.append(f"  expected {row['tool']}, got {got}: {row['message']}")
    seconds = time.perf_counter() - started
    total = sum(right.values())
    correct = right["en", True] + right["zh", True]
    print(f"router: {described}\n")
    print("| split | messages | accuracy | English | Chinese | s per message |\n|---|---|---|---|---|---|")
    per = {lang: f"{right[lang, True]}/{right[lang, True] + right[lang, False]}" for lang in ("en", "zh")}
    print(f"| {args.split} | {total} | {correct / total:.3f} | {per['en']} | {per['zh']} | {seconds / total:.2f} |")
    if wrong:
        print("\nmisrouted:\n" + "\n".join(wrong))
    print(f"\ncommand: python bench/agent_routing.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
