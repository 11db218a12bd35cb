"""Where and how models run, one object from the app's settings to serving, head loading and every
training process: the device, the cache of converted models, whether model code may run.

A training process (``finetune.worker``) receives it through its environment (``to_env``) and reads it
there once (``from_env``), as the CLI does, then passes it down: a run started from the tab, the API or the
command line loads its base exactly as the server would. The data dir is not part of it: a run's data dir
travels in its ``FinetuneConfig``.

    machine = MachineSettings.from_env()
    load_causal_lm(base, quant, machine.device, machine.trust_remote_code, machine.cache_dir)
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from assistant.core.model_sources import default_cache_dir

def default_data_dir() -> Path:
    """Adapters, runs and the documents index live here: ``$ASSISTANT_DATA_DIR`` or ``./data`` beside app.py."""
    env = os.environ.get("ASSISTANT_DATA_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parents[2] / "data"


ENV = {"device": "ASSISTANT_DEVICE", "cache_dir": "ASSISTANT_CACHE_DIR",
       "trust_remote_code": "ASSISTANT_TRUST_REMOTE_CODE"}


@dataclass(frozen=True)
class MachineSettings:
    device: str = "auto"
    """auto (CUDA if present, else CPU), cpu or cuda."""
    cache_dir: Path = field(default_factory=default_cache_dir)
    """Converted GGUF models and tokenizers."""
    trust_remote_code: bool = False
    """Let a model folder run its own Python code."""

    def to_env(self) -> dict[str, str]:
        values = {"device": self.device, "cache_dir": str(self.cache_dir),
                  "trust_remote_code": "1" if self.trust_remote_code else "0"}
        return {ENV[name]: value for name, value in values.items()}

    @classmethod
    def from_env(cls, env: dict | None = None) -> "MachineSettings":
        env = os.environ if env is None else env
        return cls(device=env.get(ENV["device"]) or "auto",
                   cache_dir=Path(env[ENV["cache_dir"]]).expanduser() if env.get(ENV["cache_dir"])
                   else default_cache_dir(),
                   trust_remote_code=(env.get(ENV["trust_remote_code"]) or "").strip().lower() in ("1", "true", "yes"))
