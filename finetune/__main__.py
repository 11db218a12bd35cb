"""Fine-tune from the command line: the same recipe and adapter folder as the Fine-tune tab.

    python -m finetune --task classification --data finetune/samples/sentiment_en.csv \\
        --base smollm2-135m-instruct --output sentiment --max-steps 30
    python -m finetune --config finetune/configs/classification.yaml --max-steps 10
    python -m finetune --resume classification-20261128-120000-a3f0   # continue a stopped run

    torchrun --nproc_per_node 2 -m finetune --task classification --data data.csv   # data parallel
    accelerate launch --config_file finetune/configs/accelerate/ddp_multi_gpu.yaml -m finetune --config ...  # GPUs

``--output`` is an adapter name, never a path: the adapter is saved as DATA_DIR/adapters/NAME, or as
OUTPUT_DIR/NAME with ``--output-dir`` (a folder you choose). Both are checked before any model loads.

Embedded base models (no download): smollm2-135m-instruct (causal LM, QLoRA),
minilm-l6-v2 (encoder + classification / token-classification head).
Exit code 2 and one line on bad input; nothing is trained or saved then.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from assistant.core.errors import UserError
from assistant.core.field_docs import field_docs
from assistant.core.model_sources import EMBEDDED_MODELS


def build_parser() -> argparse.ArgumentParser:
    from finetune.config import FinetuneConfig

    embedded = ", ".join(f"{name} ({spec.kind})" for name, spec in EMBEDDED_MODELS.items())
    parser = argparse.ArgumentParser(
        prog="python -m finetune", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description=f"QLoRA / LoRA fine-tuning. Embedded --base short names: {embedded}.",
    )
    parser.add_argument("--config", help="YAML file with any of the fields below; flags override it.")
    parser.add_argument("--resume", help="Run id (folder under DATA_DIR/runs) of a stopped run to continue.")
    docs = {name: doc.replace('%', '%%') for name, doc in field_docs(FinetuneConfig).items()}
    for f in fields(FinetuneConfig):
        default = f.default if f.default is not MISSING else None
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name, default=None,
                            help=f"{docs.get(f.name, '')} (default: {default})")
    return parser


def load_config(args: argparse.Namespace):
    from finetune.config import FinetuneConfig

    values: dict = {}
    if args.resume:
        from assistant.core.machine_settings import default_data_dir

        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}", args.resume) or ".." in args.resume:
            raise UserError(f"--resume takes the id of a stopped run (a folder name under DATA_DIR/runs, such as "
                            f"classification-20261128-120000-a3f0), not a path; got {args.resume[:80]!r}.")
        saved = Path(args.data_dir or default_data_dir()) / "runs" / args.resume / "config.json"
        if not saved.is_file():
            raise UserError(f"No stopped run '{args.resume}' (looked for {saved}). List them under data/runs/.")
        values.update(json.loads(saved.read_text()))
    if args.config:
        import yaml

        try:
            loaded = yaml.safe_load(Path(args.config).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise UserError(f"Cannot read --config {args.config}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise UserError(f"--config {args.config} must be a YAML mapping of field: value.")
        unknown = set(loaded) - {f.name for f in fields(FinetuneConfig)}
        if unknown:
            raise UserError(f"--config {args.config}: unknown fields {', '.join(sorted(unknown))}.")
        values.update(loaded)
    values.update({f.name: getattr(args, f.name) for f in fields(FinetuneConfig) if getattr(args, f.name) is not None})
    return FinetuneConfig(**values)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    finally:
        from finetune.distributed import finish

        finish()


def _run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args)
        from tqdm import tqdm

        from assistant.core.machine_settings import MachineSettings
        from finetune.distributed import from_main
        from finetune.recipe import check_approach, run
        from finetune.run_ids import new_run_id, run_folder

        check_approach(config)
        run_id = args.resume or from_main(new_run_id(config.task))  # under torchrun, rank 0's id on every rank

        bar = None

        def on_event(kind: str, payload: dict) -> None:
            nonlocal bar
            if kind == "start":
                bar = tqdm(total=payload["total_steps"], desc=f"train {payload['run_id']}", unit="step")
            elif kind == "step" and bar is not None:
                bar.n = payload["step"]
                bar.total = max(bar.total, payload["total_steps"])
                bar.set_postfix(loss=payload["loss"], **({"val": payload["val_loss"]} if "val_loss" in payload else {}))
                bar.refresh()
            elif kind == "status":
                (bar.write if bar else print)(payload["message"])

        summary = run(config, run_folder(config.data_dir, run_id), MachineSettings.from_env(), bool(args.resume),
                      on_event)
        if bar:
            bar.close()
        from finetune.distributed import is_main_process

        if not is_main_process():  # under torchrun, rank 0 reports the one adapter
            return 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: no adapter was saved", file=sys.stderr)
        return 130
    except (MemoryError, OSError, RuntimeError) as exc:
        from finetune.failures import explain

        known = explain(exc)
        if known is None:
            raise
        print(f"error: {known}", file=sys.stderr)
        return 2
    if summary.status == "stopped":
        print(f"stopped at step {summary.steps}; resume with: python -m finetune --resume {summary.run_id}")
        return 0
    print(json.dumps({"adapter": summary.adapter_path, "metrics": summary.metrics,
                      "pseudo_labels_used": summary.pseudo_labels_used,
                      "train_tokens_per_second": round(summary.tokens_per_second, 1)}, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
