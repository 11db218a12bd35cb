"""Server memory around a training job: the job runs in a child process, so the serving process's RSS
should not move. Prints the serving process's RSS before, during (peak) and after one job, and the
training process's peak RSS.

    python bench/job_memory.py                       # SmolLM2 QLoRA on the English sentiment sample, 20 steps
    python bench/job_memory.py --base minilm-l6-v2 --approach head --steps 40
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="smollm2-135m-instruct")
    parser.add_argument("--approach", default="auto")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()

    from assistant.core.loading import load_served_model
    from finetune.config import FinetuneConfig
    from finetune.jobs import JobManager

    me = psutil.Process()
    served = load_served_model("smollm2-135m-instruct")  # what the app holds while a job runs
    time.sleep(2)
    before = me.memory_info().rss
    peaks = {"server": before, "child": 0}
    with tempfile.TemporaryDirectory() as data_dir:
        jobs = JobManager(data_dir)
        config = FinetuneConfig(task="classification", data=str(REPO / "finetune/samples/sentiment_en.csv"),
                                base=args.base, approach=args.approach, max_steps=args.steps, eval_limit=16,
                                data_dir=data_dir, output="memory-bench")
        job_id = jobs.submit(config, owner="bench")
        done = threading.Event()

        def sample():
            while not done.is_set():
                peaks["server"] = max(peaks["server"], me.memory_info().rss)
                for child in me.children(recursive=True):
                    try:
                        peaks["child"] = max(peaks["child"], child.memory_info().rss)
                    except psutil.Error:
                        pass
                time.sleep(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        began = time.perf_counter()
        while jobs.get(job_id).active:
            time.sleep(0.5)
        done.set()
        sampler.join()
        snapshot = jobs.get(job_id)
        jobs.close()
    time.sleep(1)
    after = me.memory_info().rss
    mib = 2**20
    print("| job | state | wall (s) | server RSS before / peak during / after (MiB) | training process peak (MiB) |")
    print("|---|---|---|---|---|")
    print(f"| {args.base} {args.approach}, {args.steps} steps | {snapshot.state} | {time.perf_counter() - began:.0f} | "
          f"{before / mib:.0f} / {peaks['server'] / mib:.0f} / {after / mib:.0f} | {peaks['child'] / mib:.0f} |")
    print(f"\nserving model: {served.describe()}; command: python bench/job_memory.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
