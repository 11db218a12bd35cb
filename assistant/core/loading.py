"""Load a causal LM and its tokenizer in the precision the user asked for.

Precisions: ``nf4`` (bitsandbytes 4-bit NormalFloat, double quantization), ``int8``
(bitsandbytes LLM.int8), ``bf16``, ``fp32``, and ``none`` (full precision: bf16 on CUDA,
fp32 on a CPU, where bf16 arithmetic is emulated unless the CPU has bf16 instructions). nf4 computes
in bf16 on CUDA and fp32 on a CPU; training on a CPU with bf16 instructions runs the frozen base's
matmuls in bf16 (``finetune/cpu_lora.py``).

``load_causal_lm`` always gives the transformers engine (training and evaluation use it);
``load_served_model`` picks the serving engine: llama.cpp on a CPU whenever the model exists as
GGUF, transformers otherwise (``--engine``).

    python -m assistant.core.loading smollm2-135m-instruct nf4 auto   # load and print what was loaded
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from assistant.core.byte_sizes import human_bytes
from assistant.core.errors import ModelLoadError
from assistant.core.memory import release_free_memory
from assistant.core.model_sources import gguf_source, gguf_tokenizer, resolve_model
from assistant.core.precision import Precision

QUANT_CHOICES = ("nf4", "int8", "bf16", "fp32", "none")
ENGINE_CHOICES = ("auto", "llama.cpp", "transformers")

FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] | capitalize }}: {{ message['content'] }}\n\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


@dataclass
class LoadedModel:
    """A model ready to serve, with what the UI shows about it."""

    model: torch.nn.Module | None
    """The transformers model; None when the llama.cpp engine serves (it holds its own)."""
    tokenizer: object
    name: str
    location: str
    device: str
    precision: Precision
    footprint_bytes: int
    context_window: int
    notices: list[str] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    """Held while the model computes: chat, tasks and evaluation share one model in memory.
    Re-entrant, so a request can pick its adapter and then call task code that locks again."""
    engine: object = None
    """What computes: ``TransformersEngine`` (the default, on ``model``) or ``LlamaCppEngine``."""

    def __post_init__(self):
        if self.engine is None:
            from assistant.core.engines.transformers_engine import TransformersEngine

            self.engine = TransformersEngine(self)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def current(self) -> "LoadedModel":
        """This model. (``ActiveModel``, the UI's handle on a switchable model, answers the model it points at
        now, so one request can fix its model once with ``loaded.current()`` whichever handle it holds.)"""
        return self

    def describe(self) -> str:
        """One line for the UI header: name, engine, device, precision, memory, replies decoded at once."""
        at_once = self.engine.concurrency
        return (f"{self.name} · {self.engine_name} · {self.device} · {self.precision} · "
                f"{human_bytes(self.footprint_bytes)} · "
                + (f"{at_once} replies at once" if at_once > 1 else "one reply at a time"))


def pick_device(requested: str = "auto") -> str:
    """``auto`` means CUDA when it is available, else the CPU."""
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("--device cuda was asked for but no CUDA GPU is visible. Use --device cpu.")
    return requested


def full_precision_dtype(device: str) -> torch.dtype:
    return torch.bfloat16 if device == "cuda" else torch.float32


def quantization_config(quant: str, device: str):
    """The ``BitsAndBytesConfig`` for a quantized precision, or None for float ones."""
    if quant not in ("nf4", "int8"):
        return None
    try:
        import bitsandbytes  # noqa: F401
        from transformers import BitsAndBytesConfig
    except Exception as exc:
        raise ModelLoadError(
            f"--quant {quant} needs bitsandbytes, which could not be imported ({exc}). "
            "Install it with 'pip install bitsandbytes', or start with --quant none."
        ) from exc
    if quant == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=full_precision_dtype(device),
    )


def resolve_precision(quant: str, device: str) -> str:
    if quant not in QUANT_CHOICES:
        raise ModelLoadError(f"Unknown --quant '{quant}'. Choose one of: {', '.join(QUANT_CHOICES)}.")
    if quant == "none":
        return "bf16" if full_precision_dtype(device) == torch.bfloat16 else "fp32"
    return quant


def load_tokenizer(location: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(
    reference: str,
    quant: str = "nf4",
    device: str = "auto",
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
) -> LoadedModel:
    """Resolve, load and (optionally) quantize a causal LM; raise ModelLoadError on failure."""
    from transformers import AutoModelForCausalLM

    device = pick_device(device)
    precision = resolve_precision(quant, device)
    resolved = resolve_model(reference, cache_dir)
    bnb_config = quantization_config(precision, device)
    kwargs = {"trust_remote_code": trust_remote_code, "use_safetensors": True}
    if bnb_config is not None:
        kwargs.update(quantization_config=bnb_config, device_map=device)
    else:
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        kwargs.update(dtype=dtype, device_map=device)

    try:
        tokenizer = load_tokenizer(resolved.location, trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(resolved.location, **kwargs)
    except ModelLoadError:
        raise
    except OSError as exc:
        where = "folder" if resolved.is_local else "hub id"
        raise ModelLoadError(
            f"Could not load model {where} '{reference}': {str(exc).splitlines()[0]} "
            "Check the name; without network access only local folders and embedded models load."
        ) from exc
    except (ValueError, RuntimeError, ImportError) as exc:
        raise ModelLoadError(f"Could not load '{reference}' with --quant {quant}: {str(exc).splitlines()[0]}") from exc
    model.eval()
    release_free_memory()  # the float weights read for quantizing

    notices = _ensure_chat_template(tokenizer, resolved.display_name)
    context = int(getattr(model.config, "max_position_embeddings", 0) or 2048)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=resolved.display_name,
        location=resolved.location,
        device=device,
        precision=Precision(precision, double_quant=precision == "nf4"),
        footprint_bytes=int(model.get_memory_footprint()),
        context_window=context,
        notices=notices,
    )


def _ensure_chat_template(tokenizer, display_name: str) -> list[str]:
    """Give a tokenizer without a chat template the plain fallback; the notice to show, if any."""
    if getattr(tokenizer, "chat_template", None):
        return []
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return [f"'{display_name}' has no chat template; using a plain 'Role: text' template. "
            "An instruction-tuned model with a chat template will answer better."]


def llama_cpp_unavailable(gguf: Path, cache_dir: Path | None = None) -> str | None:
    """Why llama.cpp cannot serve ``gguf`` here (one line), or None when it can."""
    from assistant.core.engines.llama_cpp_probe import probe_failure
    from assistant.core.model_sources import default_cache_dir

    try:
        import llama_cpp  # noqa: F401
    except Exception as exc:  # ImportError, or OSError from a shared library built for another CPU
        first = str(exc).splitlines()[0] if str(exc) else ""
        return f"llama-cpp-python is not usable ({type(exc).__name__}: {first}; install it with scripts/setup.sh)"
    return probe_failure(gguf, cache_dir or default_cache_dir())


def load_llama_cpp(gguf: Path, display_name: str, cache_dir: Path | None = None,
                   context: int | None = None, serve_format: str = "auto", parallel: int | None = None) -> LoadedModel:
    """The GGUF file ``gguf`` on the llama.cpp engine, with its Hugging Face tokenizer. llama.cpp decodes
    with the prepared copy where ``serve_format`` asks for it and it pays (``assistant.core.gguf.prepared``);
    ``location`` stays the shipped file, the source of truth for adapters, training and export."""
    from assistant.core.engines.llama_cpp_engine import LlamaCppEngine
    from assistant.core.gguf.prepared import prepared_gguf
    from assistant.core.model_sources import default_cache_dir

    tokenizer = gguf_tokenizer(gguf, cache_dir)
    notices = _ensure_chat_template(tokenizer, display_name)
    served = prepared_gguf(gguf, cache_dir or default_cache_dir(), serve_format)
    engine = LlamaCppEngine(served, tokenizer, context=context, parallel=parallel)
    return LoadedModel(model=None, tokenizer=tokenizer, name=display_name, location=str(gguf), device="cpu",
                       precision=Precision(engine.precision, gguf=True, prepared=served != gguf),
                       footprint_bytes=served.stat().st_size,
                       context_window=engine.context_window, notices=notices, engine=engine)


def load_served_model(
    reference: str,
    quant: str = "nf4",
    device: str = "auto",
    engine: str = "auto",
    trust_remote_code: bool = False,
    cache_dir: Path | None = None,
    context: int | None = None,
    serve_format: str = "auto",
    parallel: int | None = None,
) -> LoadedModel:
    """The model the app serves, on the engine ``engine`` asks for (``auto``: llama.cpp when it can).

    ``auto`` picks llama.cpp on a CPU when the model exists as GGUF and llama-cpp-python imports;
    ``llama.cpp`` asks for it on any device. When llama.cpp cannot serve (not installed, or it fails
    to load the file) the app falls back to transformers with a one-line notice, never a crash.
    """
    if engine not in ENGINE_CHOICES:
        raise ModelLoadError(f"Unknown --engine '{engine}'. Choose one of: {', '.join(ENGINE_CHOICES)}.")
    device = pick_device(device)
    notices: list[str] = []
    wants_llama = engine == "llama.cpp" or (engine == "auto" and device == "cpu")
    source = gguf_source(reference, cache_dir) if wants_llama else None
    if wants_llama and source is None and engine == "llama.cpp":
        notices.append(f"--engine llama.cpp needs a GGUF model and '{reference}' is not one; serving it with "
                       "transformers.")
    if source is not None:
        gguf, display_name = source
        reason = llama_cpp_unavailable(gguf, cache_dir)
        if reason is None:
            try:
                return load_llama_cpp(gguf, display_name, cache_dir, context, serve_format, parallel)
            except ModelLoadError as exc:
                reason = str(exc)
        notices.append(f"{reason}; serving with transformers instead.")
    loaded = load_causal_lm(reference, quant, device, trust_remote_code, cache_dir)
    loaded.notices[:0] = notices
    return loaded


if __name__ == "__main__":
    args = sys.argv[1:] + ["smollm2-135m-instruct", "nf4", "auto"][len(sys.argv[1:]):]
    loaded = load_served_model(args[0], args[1], engine=args[2])
    print(loaded.describe())
