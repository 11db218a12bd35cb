"""Plots for bench/README.md from real training runs: a loss curve and a base-vs-adapter bar chart.

    .venv/bin/python scripts/screenshots.py --keep-data /tmp/shots-data      # a one-click fine-tune run
    OMP_NUM_THREADS=1 .venv/bin/python bench/finetune_benchmark.py --only sst2 conll --sst2-train 1500 \\
        --conll-train 800 --conll-test 200 --keep-dir /tmp/bench-runs        # the runs bench/README.md reports
    .venv/bin/python bench/plots.py --data-dir /tmp/bench-runs /tmp/shots-data

Every number is read from the adapters' own files (``DATA_DIR/adapters/<name>/metadata.json`` for the
metrics, ``metrics.jsonl`` beside it for the loss history), none is typed in. Writes
``docs/images/loss_curve.png`` (the adapter given by ``--loss-from``, default the newest) and
``docs/images/base_vs_adapter.png`` (each adapter's key metric, base vs adapter). Needs matplotlib
(requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from finetune.adapters import AdapterInfo, AdapterStore  # noqa: E402
from finetune.job_files import load_points  # noqa: E402

OUT = REPO / "docs" / "images"
KEY_METRICS = {"classification": "accuracy", "ner": "f1", "translation": "bleu", "faq": "token_f1"}
METRIC_NAMES = {"accuracy": "accuracy", "f1": "entity F1", "bleu": "BLEU", "token_f1": "token F1"}


def adapters_in(data_dirs: list[Path]) -> list[AdapterInfo]:
    """Usable adapters with base and adapter metrics, newest first, from each ``DATA_DIR/adapters``."""
    found = []
    for folder in data_dirs:
        found += [info for info in AdapterStore(folder / "adapters").list()
                  if not info.broken and (info.metrics.get("base") and info.metrics.get("adapter"))]
    return found


def key_values(info: AdapterInfo) -> tuple[str, float, float] | None:
    """(metric, base, adapter) for the adapter's task, or None when the task has no bounded key metric."""
    metric = KEY_METRICS.get(info.task)
    base, adapter = info.metrics["base"].get(metric), info.metrics["adapter"].get(metric)
    if not isinstance(base, (int, float)) or not isinstance(adapter, (int, float)):
        return None
    return metric, float(base), float(adapter)


def describe(info: AdapterInfo) -> str:
    rows = info.metadata.get("train_rows")
    return f"{info.name}\n{info.task}, {rows} training rows" if rows else f"{info.name}\n{info.task}"


def plot_loss(info: AdapterInfo, path: Path) -> None:
    import matplotlib.pyplot as plt

    train, val = load_points(Path(info.path))
    if not train:
        raise SystemExit(f"{info.path} has no metrics.jsonl with loss points")
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    ax.plot(*zip(*train), color="#2563eb", linewidth=1.4, label="train")
    if val:
        ax.plot(*zip(*val), color="#f97316", marker="o", linewidth=1.8, label="validation")
    ax.set(xlabel="optimizer step", ylabel="loss",
           title=f"{info.name}: {info.task} on {info.base_model} ({len(train)} steps)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_bars(infos: list[AdapterInfo], path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = [(info, values) for info in infos if (values := key_values(info))]
    if not rows:
        raise SystemExit("no adapter with a base-vs-adapter key metric found")
    fig, ax = plt.subplots(figsize=(max(6, 2.2 * len(rows)), 4), dpi=100)
    width = 0.38
    for i, (info, (metric, base, adapter)) in enumerate(rows):
        scale = 100 if metric == "bleu" else 1  # BLEU is 0-100: shown on the same 0-1 axis
        for offset, value, color, label in ((-width / 2, base, "#94a3b8", "base model"),
                                            (width / 2, adapter, "#16a34a", "adapter")):
            ax.bar(i + offset, value / scale, width, color=color, label=label if i == 0 else None)
            ax.text(i + offset, value / scale + 0.01, f"{value:.2f}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(len(rows)), [f"{describe(info)}\n({METRIC_NAMES[v[0]]})" for info, v in rows], fontsize=8)
    ax.set(ylim=(0, 1.1), ylabel="held-out score", title="Base model vs adapter (4-bit MiniLM + LoRA + head)")
    ax.legend(loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", nargs="+", required=True, type=Path, help="data dirs holding adapters/")
    parser.add_argument("--loss-from", help="adapter whose loss curve is drawn (default: the newest)")
    args = parser.parse_args()
    infos = adapters_in(args.data_dir)
    if not infos:
        raise SystemExit(f"no evaluated adapters in {', '.join(map(str, args.data_dir))}")
    OUT.mkdir(parents=True, exist_ok=True)
    chosen = next((i for i in infos if i.name == args.loss_from), None) if args.loss_from else infos[0]
    if chosen is None:
        raise SystemExit(f"no adapter called {args.loss_from}; found {', '.join(i.name for i in infos)}")
    plot_loss(chosen, OUT / "loss_curve.png")
    plot_bars(sorted(infos, key=lambda i: (i.task, i.name)), OUT / "base_vs_adapter.png")
    for info in infos:
        values = key_values(info)
        if values:
            print(f"{info.name}: {values[0]} {values[1]:.3f} -> {values[2]:.3f}")
    for name in ("loss_curve.png", "base_vs_adapter.png"):
        print(f"docs/images/{name}: {(OUT / name).stat().st_size / 1000:.0f} KB")


if __name__ == "__main__":
    main()
