"""App start benchmark: cold (first run: tokenizer read from the GGUF, llama.cpp probe) and warm
start to ready, and RSS.

    python bench/app_start.py                         # prints a markdown table
    python bench/app_start.py --engine transformers   # extra arguments go to app.py

Cold start uses an empty cache folder; warm start reuses it. "Ready" = the page answers HTTP.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


SETTLE_SECONDS = 15
"""After ready, the app builds the FAQ index in the background."""


def start_once(cache_dir: str, extra: list[str]) -> tuple[float, float, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "ASSISTANT_CACHE_DIR": cache_dir}
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), *extra], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"app exited with {proc.returncode}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        ready = time.perf_counter() - began
        process = psutil.Process(proc.pid)
        rss_at_ready = process.memory_info().rss
        time.sleep(SETTLE_SECONDS)
        return ready, rss_at_ready, process.memory_info().rss
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    extra = sys.argv[1:]
    with tempfile.TemporaryDirectory() as cache:
        cold = start_once(cache, extra)
        warm = start_once(cache, extra)
    print(f"| start | ready (s) | RSS at ready (MiB) | RSS {SETTLE_SECONDS} s later (MiB) |\n|---|---|---|---|")
    for name, (ready, at_ready, settled) in (("cold (empty cache)", cold), ("warm", warm)):
        print(f"| {name} | {ready:.1f} | {at_ready / 2**20:.0f} | {settled / 2**20:.0f} |")
    print(f"\ncommand: python bench/app_start.py {' '.join(extra)}".rstrip())


if __name__ == "__main__":
    main()
