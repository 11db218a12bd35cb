"""Adapter files the store tests build: weights written with ``safetensors.torch.save_file``, a PEFT-shaped
adapter_config.json, metadata and a training log, as the training recipe writes them.

    from tests.adapter_files import publish
    info = publish(AdapterStore(tmp_path / "adapters"), "my-adapter", task="ner")
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from finetune.adapters import AdapterStore, write_metadata

REPO_ROOT = Path(__file__).resolve().parents[1]

ADAPTER_CONFIG = {
    "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "smollm2-135m-instruct",
    "r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"], "bias": "none",
    "fan_in_fan_out": False, "inference_mode": True, "modules_to_save": None, "init_lora_weights": True,
    "use_rslora": False, "use_dora": False, "revision": None,
}


def make_metadata(**overrides) -> dict:
    metadata = {
        "task": "sentiment", "base_model": "smollm2-135m-instruct", "labels": ["negative", "positive"],
        "prompt_version": 1, "prompt_format": "chatml", "hyperparameters": {"r": 8, "lr": 2e-4, "epochs": 1},
        "data_fingerprint": "sha256:0123abcd", "metrics": {"base": {"accuracy": 0.5}, "adapter": {"accuracy": 0.9}},
        "created": "2025-01-31T12:00:00+00:00", "kind": "causal-lm-lora",
    }
    metadata.update(overrides)
    return metadata


def write_adapter(folder: Path, /, **metadata_overrides) -> None:
    """Fill ``folder`` as the training recipe would: weights, PEFT config, metadata, training log."""
    prefix = "base_model.model.model.layers.0.self_attn.q_proj"
    save_file({f"{prefix}.lora_A.weight": torch.randn(8, 64), f"{prefix}.lora_B.weight": torch.zeros(64, 8)},
              str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(ADAPTER_CONFIG, indent=2), encoding="utf-8")
    write_metadata(folder, make_metadata(**metadata_overrides))
    (folder / "metrics.jsonl").write_text('{"step": 1, "loss": 2.5}\n{"step": 2, "loss": 1.9}\n', encoding="utf-8")


def publish(store: AdapterStore, name: str, /, **metadata_overrides):
    staging = store.staging(name)
    with staging as folder:
        write_adapter(folder, **metadata_overrides)
    return staging.info


def tree(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*"))


def hidden_entries(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("."))
