"""Memory of switching models through the app's pool: RSS after loading an embedded model and answering once,
after unloading it, after loading the other one in its place (``--max-loaded-models 1``), and the pool's estimate.

    python bench/model_switch_memory.py                       # Qwen2.5-Coder-0.5B, then SmolLM2-135M
    python bench/model_switch_memory.py smollm2-135m-instruct qwen2.5-coder-0.5b-instruct
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assistant.chat import GenerationSettings  # noqa: E402
from assistant.core.byte_sizes import human_bytes  # noqa: E402
from assistant.core.memory import resident_bytes  # noqa: E402
from assistant.model_pool import ModelPool, model_builder  # noqa: E402
from assistant.settings import AppSettings  # noqa: E402
from finetune.adapters import AdapterStore  # noqa: E402


def main(first: str, second: str) -> None:
    data = Path(tempfile.mkdtemp(prefix="switch-memory-"))
    settings = AppSettings(model=first, data_dir=data)
    pool = ModelPool(settings.catalog(), model_builder(settings, AdapterStore(data / "adapters")),
                     settings.max_loaded_models, 0, settings.context)
    rows = [("start (libraries imported)", resident_bytes(), "")]

    def answer(name: str) -> str:
        served = pool.get(name)
        return served.chat.reply("Name three colours.", settings=GenerationSettings(temperature=0, max_new_tokens=24))

    started = time.perf_counter()
    answer(first)
    rows.append((f"{first} loaded, one reply", resident_bytes(),
                 f"load+reply {time.perf_counter() - started:.1f} s, estimate "
                 f"{human_bytes(pool.needed_bytes(pool.get(first).entry))}"))
    pool.unload(first)
    rows.append((f"{first} unloaded", resident_bytes(), ""))
    started = time.perf_counter()
    answer(first)
    rows.append((f"{first} loaded again, one reply", resident_bytes(), f"{time.perf_counter() - started:.1f} s"))
    started = time.perf_counter()
    answer(second)
    rows.append((f"switched to {second} (first unloaded)", resident_bytes(),
                 f"{time.perf_counter() - started:.1f} s, loaded: {pool.loaded_ids()}"))
    print("| step | RSS | note |\n|---|---|---|")
    for step, rss, note in rows:
        print(f"| {step} | {human_bytes(rss)} | {note} |")


if __name__ == "__main__":
    names = sys.argv[1:] or ["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct"]
    main(names[0], names[1])
