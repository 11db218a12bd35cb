"""The real benchmark data the fine-tuning benchmark trains on, written as small files for one run, and a
per-phase peak-memory probe. The data is read from ../shared/data (some sets are research-only): the
subsets go to a folder outside the project that the caller deletes.

    from finetune_data import write_sst2
    train, dev = write_sst2(Path(tmp), 2000, seed=0)
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def write_sst2(folder: Path, n_train: int, seed: int) -> tuple[Path, Path]:
    def read(name):
        with open(DATA / "sst2" / name, encoding="utf-8") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        return [(text.strip(), "positive" if label == "1" else "negative") for text, label in rows]

    train = read("train.tsv")
    random.Random(seed).shuffle(train)
    paths = []
    for name, rows in (("sst2_train.jsonl", train[:n_train]), ("sst2_dev.jsonl", read("dev.tsv"))):
        path = folder / name
        path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def write_chnsenticorp(folder: Path, n_train: int, n_dev: int, seed: int) -> tuple[Path, Path]:
    """A seeded shuffle's first ``n_train`` training reviews and the first ``n_dev`` dev reviews, labelled
    负面/正面 (the labels the app's Chinese sentiment uses)."""
    def read(name):
        with open(DATA / "chnsenticorp" / name, encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
        return [(text.strip(), "正面" if label == "1" else "负面") for text, label in rows if text.strip()]

    train = read("train.tsv")
    random.Random(seed).shuffle(train)
    paths = []
    for name, rows in (("chnsenticorp_train.jsonl", train[:n_train]), ("chnsenticorp_dev.jsonl", read("dev.tsv")[:n_dev])):
        path = folder / name
        path.write_text("".join(json.dumps({"text": t, "label": y}, ensure_ascii=False) + "\n" for t, y in rows),
                        encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_conll(folder: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    def sentences(name):
        text = (DATA / "conll2003" / name).read_text(encoding="utf-8").strip()
        return text.split("\n\n")

    train, test = folder / "conll_train.conll", folder / "conll_test.conll"
    train.write_text("\n\n".join(sentences("train.txt")[:n_train]) + "\n", encoding="utf-8")
    test.write_text("\n\n".join(sentences("test.txt")[:n_test]) + "\n", encoding="utf-8")
    return train, test


def write_multi30k(folder: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    def pairs(split):
        en = (DATA / "multi30k" / f"{split}.en").read_text(encoding="utf-8").splitlines()
        de = (DATA / "multi30k" / f"{split}.de").read_text(encoding="utf-8").splitlines()
        return [{"source": s, "target": t} for s, t in zip(en, de)]

    paths = []
    for name, rows in (("m30k_train.jsonl", pairs("train")[:n_train]), ("m30k_test.jsonl", pairs("test2016")[:n_test])):
        path = folder / name
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


class PeakRss:
    """Highest resident memory of this process while the block runs (sampled every 50 ms), in MiB.

    ``ru_maxrss`` is a peak over the whole process life, so a second loop in the same process would
    inherit the first one's peak; this measures each phase on its own.
    """

    def __enter__(self):
        import threading

        import psutil

        self.mib, self._done, process = 0.0, threading.Event(), psutil.Process()

        def sample():
            while True:
                self.mib = max(self.mib, process.memory_info().rss / 2**20)
                if self._done.wait(0.05):
                    return

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self._thread.join()
