"""Load test on loopback: N concurrent gradio_client users against the running app while a
fine-tune runs, bounded in requests and time. Reports completed requests, errors, p50/p95.

    python bench/load_test.py                       # 8 users x 3 requests, plus one fine-tune
    python bench/load_test.py --users 8 --requests 2 --no-finetune

It starts its own app on a free 127.0.0.1 port (embedded model, default engine) and, unless told not to,
a QLoRA fine-tune (``python -m finetune``, a few dozen steps) beside it, so chat competes with
training for the CPU exactly as on a shared server. Each user mixes /chat, /classify and /faq.
Streaming chats alone (tok/s, TTFT with 1-8 users, llama.cpp's batch against one at a time): bench/chat_load.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.app_server import running_app  # noqa: E402

CALLS = [
    ("/chat", {"message": "Give one tip for learning a language.", "temperature": 0.0, "max_new_tokens": 24}),
    ("/classify", {"text": "The service was slow and the food was cold.", "labels": "positive, negative"}),
    ("/faq", {"question": "What is LoRA?"}),
]


def user(url: str, requests: int, deadline: float, latencies: list, errors: list, index: int) -> None:
    from gradio_client import Client

    client = Client(url, verbose=False)
    for i in range(requests):
        if time.monotonic() > deadline:
            errors.append(f"user {index}: stopped at the time limit before request {i + 1}")
            return
        api, kwargs = CALLS[(index + i) % len(CALLS)]
        began = time.perf_counter()
        try:
            client.predict(api_name=api, **kwargs)
            latencies.append((api, time.perf_counter() - began))
        except Exception as exc:  # counted and reported, the test goes on
            errors.append(f"user {index} {api}: {type(exc).__name__}: {exc}")


def app_process(url: str):
    """The app's server process, found by the port it listens on (running_app hands out the URL only)."""
    import psutil

    port = int(url.rstrip("/").rsplit(":", 1)[1])
    for connection in psutil.net_connections("tcp"):
        if connection.laddr and connection.laddr.port == port and connection.status == psutil.CONN_LISTEN:
            return psutil.Process(connection.pid)
    raise RuntimeError(f"no process listens on port {port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--requests", type=int, default=3, help="requests per user")
    parser.add_argument("--time-limit", type=float, default=900, help="seconds, for the whole test")
    parser.add_argument("--no-finetune", action="store_true")
    args = parser.parse_args()

    latencies: list = []
    errors: list = []
    with tempfile.TemporaryDirectory() as data_dir, running_app(env={"ASSISTANT_DATA_DIR": data_dir}) as url:
        server = app_process(url)
        time.sleep(15)  # let the background FAQ index settle, as bench/app_start.py does
        rss_before = server.memory_info().rss
        trainer = None
        if not args.no_finetune:
            trainer = subprocess.Popen(
                [sys.executable, "-m", "finetune", "--task", "classification", "--data",
                 "finetune/samples/sentiment_en.csv", "--max-steps", "30", "--eval-limit", "8",
                 "--data-dir", data_dir, "--output", "load-test"],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        began = time.perf_counter()
        deadline = time.monotonic() + args.time_limit
        threads = [threading.Thread(target=user, args=(url, args.requests, deadline, latencies, errors, i))
                   for i in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
        rss_after = server.memory_info().rss
        trainer_state = "not run"
        if trainer is not None:
            trainer_state = "finished" if trainer.poll() == 0 else "still training (stopped)"
            trainer.terminate()
            trainer.wait(timeout=30)

    def pct(values, q):
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values[0] if values else 0)

    all_latencies = [s for _, s in latencies]
    print("| users | requests sent | completed | errors | p50 (s) | p95 (s) | wall (s) | fine-tune | app RSS before / "
          "after (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.users} | {args.users * args.requests} | {len(latencies)} | {len(errors)} | "
          f"{pct(all_latencies, 50):.1f} | {pct(all_latencies, 95):.1f} | {wall:.0f} | {trainer_state} | "
          f"{rss_before / 2**20:.0f} / {rss_after / 2**20:.0f} |")
    for api in sorted({a for a, _ in latencies}):
        values = [s for a, s in latencies if a == api]
        print(f"  {api}: {len(values)} done, p50 {pct(values, 50):.1f} s, p95 {pct(values, 95):.1f} s")
    for line in errors[:10]:
        print("error:", line)
    print(f"\ncommand: python bench/load_test.py {' '.join(sys.argv[1:])}".rstrip())
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
