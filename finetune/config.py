"""Fine-tuning settings: one dataclass, filled from CLI flags, a YAML file or the UI, checked on creation.

    python -m finetune --help          # every field as a flag, with its default
"""

from __future__ import annotations

import os
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from assistant.core.errors import InputError
from assistant.core.machine_settings import default_data_dir
from assistant.core.model_sources import EMBEDDED_MODELS
from finetune.tasks import METHODS, TASKS, task_for_method

PREFERENCE_LOSSES = ("dpo", "orpo", "kto")
APPROACHES = ("auto", "generative", "head")
FAST_LORA_MODES = ("auto", "bf16", "fp32", "off")  # finetune/cpu_lora.py


def check_output_dir(folder: str) -> str:
    """``folder`` made absolute, after checking now that an adapter can be saved there (it is created)."""
    path = Path(str(folder)).expanduser()
    if path.exists() and not path.is_dir():
        raise InputError(f"--output-dir {folder} is a file; give a folder to save the adapter in.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--output-dir {folder} cannot be created ({exc.strerror}); choose a writable folder.") from None
    if not os.access(path, os.W_OK):
        raise InputError(f"--output-dir {folder} is not writable; choose another folder.")
    return str(path.resolve())


@dataclass
class FinetuneConfig:
    """One fine-tuning run. Field docstrings double as ``--help`` text."""

    task: str = "classification"
    """What the adapter learns: classification, ner, translation, faq, instruction, unsupervised, preference."""
    data: str = ""
    """Training file (CSV, TSV, JSONL, JSON, Parquet, CoNLL, plain text)."""
    base: str = "auto"
    """Base model: auto (picked from the task, the data's language and the device), an embedded short name
    (smollm2-135m-instruct, minilm-l6-v2), a folder or a hub id."""
    method: str = "supervised"
    """supervised, unsupervised (continued pre-training on raw text), semi-supervised (self-training) or
    preference (DPO / ORPO on prompt, chosen, rejected pairs; KTO also on prompt, completion, label rows)."""
    approach: str = "auto"
    """generative (prompt + LoRA on a causal LM) or head (encoder + LoRA + classifier head); auto picks by base
    (and with --base auto, by task, language and device)."""
    output: str = ""
    """Adapter name (1-64 letters, digits, '-', '_', '.'; no paths). Empty: derived from task and time."""
    output_dir: str = ""
    """Save the adapter as OUTPUT_DIR/OUTPUT instead of DATA_DIR/adapters/OUTPUT: a folder you choose, created if needed."""
    quant: str = "nf4"
    """Base model precision while training: nf4 (QLoRA) or none (LoRA on full precision)."""
    lora_r: int = 16
    """LoRA rank: size of the low-rank update."""
    lora_alpha: int = 32
    """LoRA scaling numerator (the update is scaled by alpha / r)."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA input."""
    target_modules: str = "all-linear"
    """Which layers get LoRA: all-linear, or comma-separated names (q_proj,v_proj)."""
    learning_rate: float = 2e-4
    """Peak AdamW learning rate (linear warm-up then linear decay)."""
    epochs: float = 1.0
    """Passes over the training data (ignored when max_steps > 0)."""
    max_steps: int = 0
    """Stop after this many optimizer steps; 0 means use epochs."""
    batch_size: int = 8
    """Examples per forward pass."""
    grad_accum: int = 1
    """Forward passes per optimizer step (effective batch = batch_size * grad_accum)."""
    fast_lora: str = "auto"
    """CPU training: LoRA layers on a base dequantized once, with a fused update: auto (bf16 matmuls on a CPU
    with bf16 instructions, else fp32; off when the copy would not fit in memory), bf16, fp32 or off."""
    max_seq_len: int = 256
    """Longer examples are truncated to this many tokens."""
    validation_split: float = 0.1
    """Fraction of rows held out for validation loss and base-vs-adapter evaluation."""
    eval_data: str = ""
    """Optional separate validation file (same format); when set, all of --data trains."""
    eval_limit: int = 200
    """At most this many validation rows are evaluated (generation is slow on a CPU)."""
    eval_every: int = 0
    """Validation loss every N steps; 0 means about ten times per run."""
    early_stopping_patience: int = 3
    """Stop when validation loss has not improved for this many validations (0: train every step). Either way
    the adapter keeps the weights of the step with the lowest validation loss."""
    save_every: int = 50
    """Checkpoint every N steps, so Stop or a crash can resume."""
    seed: int = 42
    """Random seed for the split, shuffling and LoRA init."""
    labels: str = ""
    """Classification label set, comma separated; empty means the labels found in the data."""
    entity_types: str = ""
    """NER entity types, comma separated; empty means the types found in the data."""
    source_lang: str = "en"
    """Translation source language code."""
    target_lang: str = "de"
    """Translation target language code."""
    pseudo_label_threshold: float = 0.9
    """Semi-supervised: keep a pseudo-label only when the model's confidence is at least this."""
    preference_loss: str = "dpo"
    """Preference method: dpo (against the frozen base as reference), orpo (no reference model) or kto (unpaired
    good / bad answers: prompt, completion, label rows, or pairs split into one good and one bad row)."""
    beta: float = 0.1
    """Preference strength: DPO's and KTO's beta (how far from the reference) or ORPO's lambda weight."""
    data_dir: str = field(default_factory=lambda: str(default_data_dir()))
    """Where adapters/ and runs/ are kept."""

    def __post_init__(self):
        self._coerce_types()
        if self.task not in TASKS:
            raise InputError(f"--task '{self.task}' is not one of {', '.join(TASKS)}.")
        if self.method not in METHODS:
            raise InputError(f"--method '{self.method}' is not one of {', '.join(METHODS)}.")
        if self.approach not in APPROACHES:
            raise InputError(f"--approach '{self.approach}' is not one of {', '.join(APPROACHES)}.")
        if self.method in ("unsupervised", "preference"):
            self.task = task_for_method(self.task, self.method)
        if self.task == "preference" and self.method != "preference":
            self.method = "preference"
        if self.preference_loss not in PREFERENCE_LOSSES:
            raise InputError(f"--preference-loss '{self.preference_loss}' is not one of {', '.join(PREFERENCE_LOSSES)}.")
        if self.method == "semi-supervised" and self.task != "classification":
            raise InputError("Semi-supervised self-training is offered for classification: use --task classification.")
        if self.fast_lora not in FAST_LORA_MODES:
            raise InputError(f"--fast-lora '{self.fast_lora}' is not one of {', '.join(FAST_LORA_MODES)}.")
        if self.quant not in ("nf4", "none"):
            raise InputError(f"--quant '{self.quant}' for training must be nf4 (QLoRA) or none.")
        if not self.data:
            raise InputError("--data is required: the training file to learn from.")
        if self.output:
            from finetune.adapters import sanitize_name

            self.output = sanitize_name(self.output)  # checked now, not after an hour of training
        if self.output_dir:
            self.output_dir = check_output_dir(self.output_dir)
        checks = [
            (1 <= self.lora_r <= 512, f"--lora-r must be between 1 and 512; got {self.lora_r}."),
            (self.lora_alpha > 0, f"--lora-alpha must be positive; got {self.lora_alpha}."),
            (0 <= self.lora_dropout < 1, f"--lora-dropout must be in [0, 1); got {self.lora_dropout}."),
            (0 < self.learning_rate <= 1, InputError.keyed("config.learning_rate", value=self.learning_rate)),
            (self.epochs > 0 or self.max_steps > 0, InputError.keyed("config.epochs_or_steps")),
            (self.max_steps >= 0, InputError.keyed("config.max_steps", value=self.max_steps)),
            (1 <= self.batch_size <= 1024, InputError.keyed("config.batch_size", value=self.batch_size)),
            (1 <= self.grad_accum <= 1024, f"--grad-accum must be between 1 and 1024; got {self.grad_accum}."),
            (16 <= self.max_seq_len <= 32768, f"--max-seq-len must be between 16 and 32768; got {self.max_seq_len}."),
            (0 < self.validation_split < 0.9, f"--validation-split must be in (0, 0.9); got {self.validation_split}."),
            (self.eval_limit >= 1, f"--eval-limit must be at least 1; got {self.eval_limit}."),
            (self.save_every >= 1, f"--save-every must be at least 1; got {self.save_every}."),
            (self.eval_every >= 0, f"--eval-every must be 0 (about ten times per run) or more; got {self.eval_every}."),
            (0 <= self.early_stopping_patience <= 1000,
             f"--early-stopping-patience must be a number of validations from 0 (off) to 1000; "
             f"got {self.early_stopping_patience}."),
            (0 < self.beta <= 10, f"--beta must be in (0, 10]; got {self.beta}."),
            (0 < self.pseudo_label_threshold <= 1,
             f"--pseudo-label-threshold must be in (0, 1]; got {self.pseudo_label_threshold}."),
        ]
        for ok, problem in checks:  # a message, or an error keyed for the page's language
            if not ok:
                raise problem if isinstance(problem, InputError) else InputError(problem)

    def _coerce_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = {"int": int, "float": float, "str": str}.get(f.type if isinstance(f.type, str) else f.type.__name__)
            if kind is None or value is None:
                continue
            try:
                setattr(self, f.name, kind(value))
            except (TypeError, ValueError):
                flag = "--" + f.name.replace("_", "-")
                raise InputError(f"{flag} must be a {kind.__name__}; got '{value}'.") from None

    @property
    def is_encoder_base(self) -> bool:
        spec = EMBEDDED_MODELS.get(self.base)
        if spec is not None:
            return spec.kind == "encoder"
        config = Path(self.base) / "config.json"
        if config.is_file():
            import json

            arch = " ".join(json.loads(config.read_text()).get("architectures") or [])
            return "CausalLM" not in arch and "LMHead" not in arch
        return False

    @property
    def resolved_approach(self) -> str:
        if self.approach != "auto":
            return self.approach
        return "head" if self.is_encoder_base else "generative"

    def eval_interval(self, total_steps: int) -> int:
        """Steps between validations: --eval-every, or about ten validations per run."""
        return self.eval_every or max(1, total_steps // 10)

    def label_list(self) -> list[str]:
        return [x.strip() for x in self.labels.replace("，", ",").split(",") if x.strip()]

    def entity_type_list(self) -> list[str]:
        return [x.strip() for x in self.entity_types.split(",") if x.strip()]

    def to_dict(self) -> dict:
        return asdict(self)

    def cli_command(self) -> str:
        """The equivalent ``python -m finetune`` command line (non-default values only)."""
        parts = ["python -m finetune"]
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "data_dir" or value == f.default:
                continue
            parts.append(f"--{f.name.replace('_', '-')} {shlex.quote(str(value))}")
        return " ".join(parts)
