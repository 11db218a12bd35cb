"""Many users chatting at once: the llama.cpp engine's batch (``--parallel N``) against one reply at a time
(``--parallel 1``, the same app started the same way), over streamed ``/v1/chat/completions`` on loopback.

    python bench/chat_load.py                                   # default model, parallel auto vs 1
    python bench/chat_load.py --model smollm2-135m-instruct --parallel 4 --users 1 2 4 8

Per number of concurrent users (each streams one greedy reply of ``--tokens`` tokens to its own question):
aggregate decode tok/s (all reply tokens / wall time), p50/p95 time to first token and to last token. Then
turn-5 TTFT: one user's fifth turn (four earlier turns and replies in its history) while three others chat,
against the time to read that conversation afresh (the same history behind another system prompt, so no cached
prefix applies) under the same load. Each configuration runs in its own app process, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.app_server import running_app  # noqa: E402

QUESTIONS = ["Explain why the sky is blue.", "Give three tips for learning a language.", "What is a neural network?",
             "Describe a good breakfast.", "How do trees grow?", "Why do cats purr?", "What is LoRA fine-tuning?",
             "Tell me about the moon.", "How does a bicycle stay upright?", "What makes bread rise?"]
SYSTEM = "You are a helpful assistant."
MODEL = ["?"]  # the served model's id, read from /v1/models once the app is up


def stream_chat(url: str, messages: list[dict], tokens: int) -> dict:
    """One streamed greedy reply: {ttft, total, tokens, text} (seconds from the request)."""
    import httpx

    body = {"model": MODEL[0], "messages": messages, "max_tokens": tokens, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    began = time.perf_counter()
    first, text, pieces = None, "", 0
    with httpx.stream("POST", f"{url}v1/chat/completions", json=body, timeout=900) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = (json.loads(line[6:]).get("choices") or [{}])[0].get("delta", {}).get("content")
            if delta:
                first = first or time.perf_counter()
                text += delta
                pieces += 1
    return {"ttft": (first or time.perf_counter()) - began, "total": time.perf_counter() - began, "text": text,
            "pieces": pieces}


def concurrent(url: str, users: int, tokens: int, tokenizer) -> dict:
    results: list[dict] = [None] * users  # type: ignore[list-item]

    def user(index: int) -> None:
        question = QUESTIONS[index % len(QUESTIONS)] + (f" (user {index})" if index >= len(QUESTIONS) else "")
        results[index] = stream_chat(url, [{"role": "system", "content": SYSTEM},
                                           {"role": "user", "content": question}], tokens)

    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    produced = sum(len(tokenizer(r["text"], add_special_tokens=False)["input_ids"]) for r in results)
    ttfts, totals = sorted(r["ttft"] for r in results), sorted(r["total"] for r in results)
    return {"users": users, "tok_s": produced / wall, "tokens": produced, "ttft_p50": statistics.median(ttfts),
            "ttft_p95": percentile(ttfts, 95), "last_p50": statistics.median(totals),
            "last_p95": percentile(totals, 95)}


def percentile(sorted_values: list[float], p: float) -> float:
    index = min(len(sorted_values) - 1, max(0, round(p / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def turn_five(url: str, tokens: int) -> dict:
    """Turn-5 TTFT of one conversation while three other users chat, and the same prompt read afresh."""
    history = [{"role": "system", "content": SYSTEM}]
    for question in QUESTIONS[:4]:
        history.append({"role": "user", "content": question})
        history.append({"role": "assistant", "content": stream_chat(url, history, tokens)["text"]})
    history.append({"role": "user", "content": QUESTIONS[4]})
    busy, stop = [], threading.Event()

    def other(index: int) -> None:
        while not stop.is_set():
            busy.append(stream_chat(url, [{"role": "user", "content": QUESTIONS[5 + index]}], 4 * tokens))

    others = [threading.Thread(target=other, args=(i,)) for i in range(3)]
    for thread in others:
        thread.start()
    time.sleep(2.0)  # the others are decoding
    cached = stream_chat(url, history, 8)["ttft"]
    fresh = stream_chat(url, [{"role": "system", "content": SYSTEM + " Answer briefly."}, *history[1:]], 8)["ttft"]
    stop.set()
    for thread in others:
        thread.join()
    return {"turn5_ttft": cached, "reread_ttft": fresh}


def run(model: str, parallel: int, users: list[int], tokens: int) -> None:
    """One app process with ``parallel`` slots: prints a table row per number of users, then the turn-5 line."""
    import httpx

    from assistant.core.model_sources import gguf_source, gguf_tokenizer

    tokenizer = gguf_tokenizer(gguf_source(model)[0])
    env = {"ASSISTANT_MODEL": model, "ASSISTANT_PARALLEL": str(parallel)}
    shown = parallel or "auto"
    with running_app(env=env, timeout=600) as url:
        MODEL[0] = httpx.get(f"{url}v1/models", timeout=30).json()["data"][0]["id"]
        time.sleep(10)  # the FAQ index warms in the background at start
        stream_chat(url, [{"role": "user", "content": "Hello"}], 4)  # first call: kernels and caches warm
        for n in users:
            row = concurrent(url, n, tokens, tokenizer)
            print(f"| {shown} | {row['users']} | {row['tok_s']:.1f} | {row['ttft_p50']:.2f} s "
                  f"| {row['ttft_p95']:.2f} s | {row['last_p50']:.2f} s | {row['last_p95']:.2f} s |", flush=True)
        turn = turn_five(url, tokens)
        print(f"parallel {shown}: turn-5 TTFT with 3 others chatting {turn['turn5_ttft']:.2f} s; the same conversation "
              f"read afresh {turn['reread_ttft']:.2f} s ({turn['turn5_ttft'] / turn['reread_ttft']:.2f}x)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="served model (default: the app's default)")
    parser.add_argument("--parallel", type=int, default=0, help="slots of the batched run (0: the app's default)")
    parser.add_argument("--users", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--tokens", type=int, default=64, help="reply tokens per user")
    args = parser.parse_args()
    from assistant.core.model_sources import DEFAULT_CHAT_MODEL

    model = args.model or DEFAULT_CHAT_MODEL
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    print(f"{model}, {args.tokens} greedy tokens per reply, CPU: {name}, {len(os.sched_getaffinity(0))} cores, "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    print("| parallel | users | agg tok/s | TTFT p50 | TTFT p95 | last p50 | last p95 |\n|---|---|---|---|---|---|---|",
          flush=True)
    for parallel in (args.parallel, 1):
        run(model, parallel, args.users, args.tokens)

if __name__ == "__main__":
    main()
