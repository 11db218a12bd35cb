"""App settings: one dataclass, filled from command-line flags, then environment variables,
then defaults, and checked on creation.

Every flag has an environment variable (for Hugging Face Spaces and Docker), e.g.
``--model`` / ``ASSISTANT_MODEL``. ``python app.py --help`` lists them all.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from assistant.arguments import number_arg
from assistant.core.errors import InputError
from assistant.core.field_docs import field_docs
from assistant.core.gguf.prepared import MODES as SERVE_FORMATS
from assistant.core.loading import ENGINE_CHOICES, QUANT_CHOICES
from assistant.core.machine_settings import default_data_dir
from assistant.core.model_sources import DEFAULT_CHAT_MODEL, EMBEDDED_MODELS, default_cache_dir


@dataclass
class AppSettings:
    """How the app runs. Each field: its flag is ``--name-with-dashes``, its env var is in ``ENV``."""

    model: str = DEFAULT_CHAT_MODEL
    """Chat model: an embedded short name, a local folder (safetensors or .gguf) or a hub id."""
    engine: str = "auto"
    """Serving engine: auto (llama.cpp on a CPU when the model exists as GGUF, else transformers), llama.cpp, or transformers."""
    quant: str = "nf4"
    """Precision on the transformers engine: nf4 (4-bit, default), int8, bf16, fp32, or none (full precision for the device). A GGUF file on llama.cpp keeps its own quantization."""
    device: str = "auto"
    """auto (CUDA if present, else CPU), cpu or cuda."""
    serve_format: str = "auto"
    """llama.cpp only: auto (serve a Q4_0 copy made once in the cache where llama.cpp runs it faster on this CPU; the shipped file stays the source of truth) or shipped (the file as it is)."""
    context: int = 4096
    """Context window (tokens) the llama.cpp engine allocates, at most the model's own; its KV cache is reserved up front."""
    parallel: int = 0
    """llama.cpp only: replies decoded together in one batch (users served at once); 0 picks two per core, at most 8 and at most 16384 // context. The transformers engine serves one at a time."""
    host: str = "127.0.0.1"
    """Interface to listen on; 0.0.0.0 to serve other machines (set in the Docker image)."""
    port: int = 7860
    """TCP port for the web UI and API."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    """Where converted models are cached."""
    data_dir: Path = field(default_factory=default_data_dir)
    """Where adapters, training runs and uploaded datasets are kept."""
    trust_remote_code: bool = False
    """Allow a model folder's own Python code to run. Off unless you trust the model."""
    admin_password: str = ""
    """When set, fine-tuning and adapter management are locked behind this password."""
    auth: str = ""
    """user:password (comma-separated pairs allowed) to put the whole app behind Gradio's login."""
    max_upload_mb: int = 200
    """Largest upload accepted, in MB."""
    api_keys: str = ""
    """Comma-separated keys the OpenAI-compatible /v1 API requires (Authorization: Bearer KEY); empty: open."""
    monitoring: bool = False
    """Serve Gradio's /monitoring dashboard. Off by default: every visitor could read it, the operator's functions included."""
    docs_dir: str = ""
    """A folder of documents (PDF, TXT, Markdown, HTML, DOCX) every session can ask about; indexed at start into DATA_DIR/docs_index (only new or changed files are read)."""
    qdrant_url: str = ""
    """A Qdrant server (http://host:6333) to hold the shared documents' index instead of DATA_DIR/docs_index."""
    models_dir: str = ""
    """A folder of chat models (.gguf files and model folders) to list and switch to without a restart; empty: DATA_DIR/models."""
    allow_hub_models: str = ""
    """Comma-separated hub ids (owner/repo or owner/repo/file.gguf) the model list offers and an operator may download into the models folder where the network reaches the hub; * allows any."""
    max_loaded_models: int = 1
    """How many chat models stay in memory at once; the least recently used is unloaded when another is loaded."""
    max_model_memory_mb: int = 0
    """Cap on the estimated memory of all loaded chat models, in MB; 0: what the machine has available."""

    ENV = {
        "model": "ASSISTANT_MODEL",
        "engine": "ASSISTANT_ENGINE",
        "quant": "ASSISTANT_QUANT",
        "device": "ASSISTANT_DEVICE",
        "serve_format": "ASSISTANT_SERVE_FORMAT",
        "context": "ASSISTANT_CONTEXT",
        "parallel": "ASSISTANT_PARALLEL",
        "host": "GRADIO_SERVER_NAME",
        "port": "GRADIO_SERVER_PORT",
        "cache_dir": "ASSISTANT_CACHE_DIR",
        "data_dir": "ASSISTANT_DATA_DIR",
        "trust_remote_code": "ASSISTANT_TRUST_REMOTE_CODE",
        "admin_password": "ASSISTANT_ADMIN_PASSWORD",
        "auth": "ASSISTANT_AUTH",
        "max_upload_mb": "ASSISTANT_MAX_UPLOAD_MB",
        "api_keys": "ASSISTANT_API_KEYS",
        "monitoring": "ASSISTANT_MONITORING",
        "docs_dir": "ASSISTANT_DOCS_DIR",
        "qdrant_url": "ASSISTANT_QDRANT_URL",
        "models_dir": "ASSISTANT_MODELS_DIR",
        "allow_hub_models": "ASSISTANT_ALLOW_HUB_MODELS",
        "max_loaded_models": "ASSISTANT_MAX_LOADED_MODELS",
        "max_model_memory_mb": "ASSISTANT_MAX_MODEL_MEMORY_MB",
    }

    def __post_init__(self):
        self.model = str(self.model).strip()
        if not self.model:
            raise InputError("--model is empty: give an embedded short name, a folder or a hub id.")
        if self.quant not in QUANT_CHOICES:
            raise InputError(f"--quant '{self.quant}' is not one of {', '.join(QUANT_CHOICES)}.")
        if self.engine not in ENGINE_CHOICES:
            raise InputError(f"--engine '{self.engine}' is not one of {', '.join(ENGINE_CHOICES)}.")
        if self.serve_format not in SERVE_FORMATS:
            raise InputError(f"--serve-format '{self.serve_format}' is not one of {', '.join(SERVE_FORMATS)}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InputError(f"--device '{self.device}' is not one of auto, cpu, cuda.")
        try:
            self.port = int(self.port)
        except (TypeError, ValueError):
            raise InputError(f"--port must be a number between 1 and 65535; got '{self.port}'.") from None
        if not 1 <= self.port <= 65535:
            raise InputError(f"--port must be between 1 and 65535; got {self.port}.")
        self.context = number_arg(self.context, "--context", 256, 1_048_576, integer=True)
        self.parallel = number_arg(self.parallel, "--parallel", 0, 64, integer=True)
        self.cache_dir = Path(self.cache_dir).expanduser()
        self.data_dir = Path(self.data_dir).expanduser()
        try:
            self.max_upload_mb = int(self.max_upload_mb)
        except (TypeError, ValueError):
            raise InputError(f"--max-upload-mb must be a number; got '{self.max_upload_mb}'.") from None
        if not 1 <= self.max_upload_mb <= 10_000:
            raise InputError(f"--max-upload-mb must be between 1 and 10000; got {self.max_upload_mb}.")
        if self.auth and any(":" not in pair or not pair.split(":", 1)[0] for pair in self.auth.split(",")):
            raise InputError("--auth must be user:password, or several separated by commas.")
        self.docs_dir, self.qdrant_url = str(self.docs_dir or "").strip(), str(self.qdrant_url or "").strip()
        if self.docs_dir and not Path(self.docs_dir).expanduser().is_dir():
            raise InputError(f"--docs-dir '{self.docs_dir}' is not a folder: give a folder of documents, or leave it empty.")
        if self.qdrant_url and not self.qdrant_url.startswith(("http://", "https://")):
            raise InputError(f"--qdrant-url must start with http:// or https://; got '{self.qdrant_url}'.")
        self.models_dir = str(self.models_dir or "").strip()
        if self.models_dir and Path(self.models_dir).expanduser().exists() and not Path(self.models_dir).expanduser().is_dir():
            raise InputError(f"--models-dir '{self.models_dir}' is a file: give a folder (it is created when missing).")
        self.allow_hub_models = str(self.allow_hub_models or "").strip()
        self.max_loaded_models = number_arg(self.max_loaded_models, "--max-loaded-models", 1, 16, integer=True)
        self.max_model_memory_mb = number_arg(self.max_model_memory_mb, "--max-model-memory-mb", 0, 16_777_216,
                                              integer=True)
        for name in ("trust_remote_code", "monitoring"):
            if isinstance(getattr(self, name), str):
                setattr(self, name, getattr(self, name).strip().lower() in ("1", "true", "yes", "on"))

    def machine(self):
        """The device, cache and trust setting that serving and every training process share."""
        from assistant.core.machine_settings import MachineSettings

        return MachineSettings(self.device, self.cache_dir, bool(self.trust_remote_code))

    def models_path(self) -> Path:
        """The models folder: ``--models-dir``, or DATA_DIR/models."""
        return Path(self.models_dir).expanduser() if self.models_dir else self.data_dir / "models"

    def catalog(self):
        """The one list of chat models (``assistant.core.model_catalog``) these settings describe."""
        from assistant.core.model_catalog import ModelCatalog

        hub_ids = tuple(part for part in self.allow_hub_models.split(",") if part.strip())
        return ModelCatalog(self.models_path(), self.cache_dir, self.model, hub_ids)

    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    def auth_pairs(self) -> list[tuple[str, str]] | None:
        """Gradio's ``auth`` argument, or None when the app is open."""
        if not self.auth:
            return None
        return [tuple(pair.split(":", 1)) for pair in self.auth.split(",")]

    @classmethod
    def parser(cls) -> argparse.ArgumentParser:
        embedded = ", ".join(EMBEDDED_MODELS)
        parser = argparse.ArgumentParser(
            prog="python app.py",
            description=f"LLM assistant studio. Embedded models (no download needed): {embedded}.",
        )
        docs = field_docs(cls)
        for f in fields(cls):
            flag = "--" + f.name.replace("_", "-")
            help_text = f"{docs[f.name]} Env: {cls.ENV[f.name]}.".replace("%", "%%")
            if f.type in ("bool", bool):
                parser.add_argument(flag, action="store_true", default=None, help=help_text)
            elif f.name == "quant":
                parser.add_argument(flag, choices=QUANT_CHOICES, help=help_text)
            elif f.name == "engine":
                parser.add_argument(flag, choices=ENGINE_CHOICES, help=help_text)
            else:
                parser.add_argument(flag, help=help_text)
        return parser

    @classmethod
    def from_cli_and_env(cls, argv: list[str] | None = None, env: dict | None = None) -> "AppSettings":
        env = os.environ if env is None else env
        args = vars(cls.parser().parse_args(argv))
        values = {}
        for f in fields(cls):
            if args.get(f.name) is not None:
                values[f.name] = args[f.name]
            elif env.get(cls.ENV[f.name]):
                values[f.name] = env[cls.ENV[f.name]]
        return cls(**values)
