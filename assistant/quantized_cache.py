"""A disk cache of bitsandbytes-quantized CPU models, so a warm start skips quantization.

Quantizing SmolLM2-135M to NF4 on a CPU takes ~3 s of a ~5.5 s load (bitsandbytes' CPU path
runs ``torch.bucketize`` over every weight); loading the already-quantized weights (160 MiB
instead of 513) takes ~0.8 s and gives bit-identical logits. The first load quantizes as
before and saves the result next to the converted models; later loads read it back.

The cache key covers the source folder (path, and size + mtime of every weight file), the
quantization settings and the bitsandbytes / transformers versions, so a changed model or an
upgrade quantizes afresh. Writes go to a temporary folder renamed into place: an interrupted
save never leaves a half-written entry. A read-only or full disk only costs the speed-up.

    python -m assistant.quantized_cache smollm2-135m-instruct    # where its entry lives
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

WEIGHT_SUFFIXES = (".safetensors",)
MIN_WEIGHT_BYTES = 32 * 2**20
"""Smaller checkpoints quantize in well under a second: not worth a cache entry."""


def cache_folder(source: str, precision: str, quant_config: dict, cache_dir: Path) -> Path | None:
    """Where the quantized copy of a local model folder lives; None for a hub id or small weights."""
    folder = Path(source)
    weights = sorted(p for p in folder.glob("*") if p.suffix in WEIGHT_SUFFIXES) if folder.is_dir() else []
    if sum(p.stat().st_size for p in weights) < MIN_WEIGHT_BYTES:
        return None
    import bitsandbytes
    import transformers

    stamp = [str(folder.resolve()), precision, json.dumps(quant_config, sort_keys=True, default=str),
             bitsandbytes.__version__, transformers.__version__]
    stamp += [f"{p.name}:{p.stat().st_size}:{int(p.stat().st_mtime)}" for p in weights]
    key = hashlib.sha1("|".join(stamp).encode()).hexdigest()[:16]
    return cache_dir / "quantized" / f"{folder.name}-{precision}-{key}"


def load_cached(target: Path | None, **kwargs):
    """The cached quantized model, or None when there is none (or it cannot be read; it is then removed)."""
    if target is None or not (target / "config.json").is_file():
        return None
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(target, use_safetensors=True, **kwargs)
    except Exception as exc:  # a damaged entry: quantize again rather than fail
        log.warning("Ignoring the quantized-model cache at %s: %s", target, exc)
        shutil.rmtree(target, ignore_errors=True)
        return None


def save(model, target: Path | None) -> None:
    """Save a freshly quantized model for the next start; failures only log."""
    if target is None:
        return
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=target.parent))
    except OSError as exc:
        log.warning("Not caching the quantized model (%s); the next start quantizes again.", exc)
        return
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        os.replace(tmp, target)
    except Exception as exc:  # disk full, read-only, an architecture bitsandbytes cannot serialise
        log.warning("Not caching the quantized model (%s); the next start quantizes again.", exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename


if __name__ == "__main__":
    from assistant.loading import quantization_config
    from assistant.model_sources import default_cache_dir, resolve_model

    location = resolve_model(sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m-instruct").location
    print(cache_folder(location, "nf4", quantization_config("nf4", "cpu").to_dict(), default_cache_dir()))
