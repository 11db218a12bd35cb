"""The fine-tuning recipe, top to bottom:

    load data -> load 4-bit base -> prepare_model_for_kbit_training -> LoRA -> train
    -> (semi-supervised: pseudo-label, train again) -> evaluate base vs adapter -> save

The CLI (``python -m finetune``) and the Fine-tune tab (through ``finetune.worker``) both call
``run(config, run_dir, machine, resume)``: the caller names the run folder (``finetune.run_ids``), passes the
machine settings it was given and says whether this is a new run or a resume. Progress reaches the caller
through ``on_event(kind, payload)``; ``stop_event`` ends training at the next step with a checkpoint that
``run(config, run_dir, machine, resume=True)`` continues from. Tests: ``pytest tests/test_finetune_recipe.py -q``.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from assistant.core.errors import InputError
from assistant.core.loading import pick_device
from assistant.core.machine_settings import MachineSettings
from finetune.adapters import AdapterStore, write_metadata
from finetune.auto_choice import resolve_auto
from finetune.config import FinetuneConfig
from finetune.data import load_dataset_file, split_train_validation
from finetune.distributed import agree, is_distributed, is_main_process, wait_for_everyone, world_size
from finetune.early_stopping import EarlyStopping
from finetune.encode import encode_packed_text, encode_supervised, task_module
from finetune.evaluate import base_vs_adapter
from finetune.kto import kto_rows
from finetune.loop import LoopSettings, steps_for, train
from finetune.models import build_generative, build_head, encode_head_examples, head_predict
from finetune.preference import TRAINER_DIR, check_preference_rows, encode_pairs, preference_metrics, train_preference
from finetune.tasks import data_task

Event = Callable[[str, dict], None]


@dataclass
class RunSummary:
    run_id: str
    status: str  # finished | stopped
    steps: int
    adapter: str | None = None
    adapter_path: str | None = None
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0
    tokens_per_second: float = 0.0
    pseudo_labels_used: int | None = None
    round_2: dict | None = None  # semi-supervised: {"pseudo_labels", "examples", "steps"} of the second round
    best_step: int | None = None  # the step whose weights the adapter holds (lowest validation loss)
    stopped_early: bool = False  # validation loss stopped improving before the last step


def _task_options(config: FinetuneConfig, rows: list[dict]) -> dict:
    """Label sets and languages the prompts need, from the config or the data."""
    if config.task == "classification":
        labels = config.label_list() or sorted({str(r["label"]) for r in rows})
        unknown = sorted({str(r["label"]) for r in rows} - set(labels))
        if unknown:
            raise InputError(f"The data has labels not in --labels: {', '.join(unknown[:10])}. "
                             "Add them to --labels or leave --labels empty to use the data's labels.")
        return {"labels": labels}
    if config.task == "ner":
        types = config.entity_type_list() or sorted({t[2:] for r in rows for t in r["tags"] if t != "O"})
        tag_labels = ["O"] + [f"{p}-{t}" for t in types for p in ("B", "I")]
        return {"entity_types": types, "tag_labels": tag_labels}
    if config.task == "translation":
        return {"source_lang": config.source_lang, "target_lang": config.target_lang}
    return {}


def _encode(config, rows, tokenizer, options) -> list[dict]:
    if config.task == "preference":
        return encode_pairs(rows, tokenizer, config.max_seq_len)
    if config.task == "unsupervised":
        return encode_packed_text(rows, tokenizer, config.max_seq_len)
    if config.resolved_approach == "head":
        labels = options["labels"] if config.task == "classification" else options["tag_labels"]
        return encode_head_examples(rows, tokenizer, labels, config.task == "ner", config.max_seq_len)
    return encode_supervised(config.task, rows, tokenizer, config.max_seq_len, options)


def check_approach(config: FinetuneConfig) -> None:
    """InputError unless the approach fits task and base: checked once, where a run is accepted (the CLI,
    ``start_training``), not in ``run``; ``--base auto`` then picks a base that fits (``choose_base``)."""
    if config.resolved_approach == "head" and config.task not in ("classification", "ner"):
        raise InputError(f"A classifier head fits classification and NER, not '{config.task}'. "
                         "Use --approach generative with a causal LM base.")
    if config.resolved_approach == "generative" and config.is_encoder_base:
        raise InputError(f"'{config.base}' is an encoder: it cannot generate text. Use --approach head "
                         "(classification, NER) or a causal LM base such as smollm2-135m-instruct.")


def _pseudo_label(config, model, tokenizer, loaded, unlabelled: list[dict], labels: list[str]) -> list[dict]:
    """Label the unlabelled rows with the current model; keep those above the threshold."""
    kept = []
    if config.resolved_approach == "head":
        examples = [{"input_ids": e["input_ids"], "labels": 0} for e in
                    encode_head_examples([{**r, "label": labels[0]} for r in unlabelled], tokenizer, labels, False,
                                         config.max_seq_len)]
        for row, (index, confidence) in zip(unlabelled, head_predict(model, examples, tokenizer.pad_token_id)):
            if confidence >= config.pseudo_label_threshold:
                kept.append({"text": row["text"], "label": labels[index]})
        return kept
    module = task_module("classification")
    for row in unlabelled:
        scores = module.label_scores(loaded, row["text"], labels)
        label = max(scores, key=scores.get)
        if scores[label] >= config.pseudo_label_threshold:
            kept.append({"text": row["text"], "label": label})
    return kept


def _load_agreed(config: FinetuneConfig):
    """The validated dataset; under torchrun, only once every rank has read the same file with the same settings."""
    if not is_distributed():
        dataset = load_dataset_file(config.data, task=data_task(config.task, config.method))
        dataset.raise_if_invalid()
        return dataset
    dataset, error = None, None
    try:
        dataset = load_dataset_file(config.data, task=data_task(config.task, config.method))
        dataset.raise_if_invalid()
    except InputError as exc:
        error = str(exc)
    agree({"settings": config.to_dict(), "data": dataset.fingerprint if dataset else None}, error)
    if config.method in ("semi-supervised", "preference"):
        raise InputError(f"--method {config.method} runs in one process; start it without torchrun / accelerate "
                         "launch (data parallel training covers supervised and unsupervised runs).")
    return dataset


def _kept_step_line(result, patience: int) -> str:
    """The log line that says which step's weights the adapter keeps, and why training ended there."""
    if result.best_step is None:
        return f"Trained {result.steps} steps; no validation loss (no validation rows): the last weights are kept."
    kept = f"kept step {result.best_step}, the lowest validation loss ({result.best_val_loss:.4f})"
    if result.stopped_early:
        times = f"{patience} validation{'s' if patience != 1 else ''}"
        return f"Stopped early at step {result.steps}: validation loss did not improve for {times}; {kept}."
    return f"Trained {result.steps} steps; {kept}."


def has_checkpoint(config: FinetuneConfig, run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a checkpoint this run's trainer continues from."""
    if config.method == "preference":
        return any((run_dir / TRAINER_DIR).glob("checkpoint-*"))
    return (run_dir / "checkpoint.pt").is_file()


def run(config: FinetuneConfig, run_dir: Path, machine: MachineSettings, resume: bool, on_event: Event | None = None,
        stop_event: threading.Event | None = None) -> RunSummary:
    """Run one fine-tuning job in ``run_dir`` (its name is the run id) on the machine ``machine`` describes;
    ``resume`` continues from the checkpoint there. Returns when it finished (adapter saved) or was stopped
    (checkpoint kept). ``config`` has passed ``check_approach``."""
    emit = on_event or (lambda kind, payload: None)
    began = time.perf_counter()
    run_dir, run_id = Path(run_dir), Path(run_dir).name
    if resume and not has_checkpoint(config, run_dir):
        raise InputError(f"Run {run_id} has no checkpoint to resume from (nothing in {run_dir}): it stopped "
                         "before its first checkpoint. Start it again as a new run instead.")

    # 1. Data: detect, validate (nothing trains on a file with errors), split; --base auto is decided here.
    emit("status", {"message": f"Reading {Path(config.data).name}"})
    dataset = _load_agreed(config)
    config, choice = resolve_auto(config, dataset.rows, pick_device(machine.device))
    if choice is not None:
        emit("status", {"message": f"Base {choice.describe()}"})
    if config.eval_data:
        held_out = load_dataset_file(config.eval_data, task=config.task)
        held_out.raise_if_invalid()
        train_rows, val_rows = list(dataset.rows), list(held_out.rows)
    else:
        train_rows, val_rows = split_train_validation(dataset.rows, config.validation_split, config.seed)
    options = _task_options(config, dataset.rows)
    if config.method == "preference":
        check_preference_rows(config, dataset.rows)

    # 2. Model: 4-bit base + LoRA (+ head).
    emit("status", {"message": f"Loading {config.base} ({config.quant}) and adding LoRA r={config.lora_r}"})
    loaded = None
    if config.resolved_approach == "head":
        labels = options["labels"] if config.task == "classification" else options["tag_labels"]
        model, tokenizer = build_head(config, labels, config.task == "ner", machine)
    else:
        model, loaded = build_generative(config, machine)
        tokenizer = loaded.tokenizer
    train_examples = _encode(config, train_rows, tokenizer, options)
    val_examples = _encode(config, val_rows, tokenizer, options)
    if not train_examples:
        raise InputError(f"{config.data}: no training examples after encoding. Add rows or lower --max-seq-len.")

    # 3. Train (resumable).
    if is_main_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2, ensure_ascii=False))
    wait_for_everyone()
    processes = world_size()  # each one trains --batch-size examples of every global batch
    total = steps_for(len(train_examples), config.batch_size * processes, config.grad_accum, config.epochs,
                      config.max_steps)
    settings = LoopSettings(config.learning_rate, config.batch_size, config.grad_accum, total,
                            config.eval_interval(total), config.save_every, config.seed, config.fast_lora,
                            config.early_stopping_patience)
    if config.method == "preference":  # TRL's DPO / ORPO trainer: a pair is one example; KTO: a rated answer
        trained = len(kto_rows(train_rows)) if config.preference_loss == "kto" else len(train_rows)
        total = steps_for(trained, config.batch_size, config.grad_accum, config.epochs, config.max_steps)
        emit("start", {"run_id": run_id, "total_steps": total, "train_examples": len(train_rows),
                       "val_examples": len(val_rows), "command": config.cli_command()})
        result = train_preference(config, model, tokenizer, train_rows, run_dir, total,
                                  on_step=lambda record: emit("step", record), stop_event=stop_event,
                                  resume=resume, val_rows=val_rows[: config.eval_limit])
    else:
        emit("start", {"run_id": run_id, "total_steps": total, "train_examples": len(train_examples),
                       "val_examples": len(val_examples), "command": config.cli_command()})
        result = train(model, train_examples, val_examples[: config.eval_limit], settings, tokenizer.pad_token_id,
                       run_dir, on_step=lambda record: emit("step", record), stop_event=stop_event,
                       resume=resume)
    if result.status == "stopped":
        emit("stopped", {"run_id": run_id, "step": result.steps})
        return RunSummary(run_id, "stopped", result.steps, seconds=result.seconds)
    emit("status", {"message": _kept_step_line(result, config.early_stopping_patience)})
    if not is_main_process():  # rank 0 evaluates and saves the one adapter
        return RunSummary(run_id, "finished", result.steps, seconds=result.seconds)

    # 4. Semi-supervised: pseudo-label the unlabelled rows, then train again on both.
    pseudo_used, round_2 = None, None
    if config.method == "semi-supervised":
        emit("status", {"message": f"Pseudo-labelling {len(dataset.unlabelled)} unlabelled rows"})
        pseudo = _pseudo_label(config, model, tokenizer, loaded, dataset.unlabelled, options["labels"])
        pseudo_used = len(pseudo)
        emit("status", {"message": f"{pseudo_used} of {len(dataset.unlabelled)} pseudo-labels kept "
                                   f"(confidence ≥ {config.pseudo_label_threshold}); training round 2"})
        if pseudo:
            examples = train_examples + _encode(config, pseudo, tokenizer, options)
            settings.total_steps = total + steps_for(len(examples), config.batch_size, config.grad_accum,
                                                     config.epochs, config.max_steps)
            round_1_best = EarlyStopping.starting_at(config.early_stopping_patience, model, result.best_step,
                                                     result.best_val_loss)  # round 2 must beat it to replace it
            more = train(model, examples, val_examples[: config.eval_limit], settings, tokenizer.pad_token_id,
                         run_dir, on_step=lambda record: emit("step", record), stop_event=stop_event,
                         resume=False, start_step=result.steps, best_so_far=round_1_best)
            round_2 = {"pseudo_labels": pseudo_used, "examples": len(examples), "steps": more.steps - result.steps}
            result.steps, result.seconds = more.steps, result.seconds + more.seconds
            result.target_tokens += more.target_tokens
            result.tokens_processed += more.tokens_processed
            result.best_step, result.best_val_loss = more.best_step, more.best_val_loss
            result.stopped_early = more.stopped_early
            emit("status", {"message": _kept_step_line(result, config.early_stopping_patience)})

    # 5. Evaluate base vs adapter with the task's own metric.
    eval_rows = val_rows[: config.eval_limit]
    on_status = lambda message: emit("status", {"message": message})  # noqa: E731
    if not eval_rows:
        metrics = {"base": {}, "adapter": {}}
    elif config.method == "preference":
        metrics = preference_metrics(model, tokenizer, eval_rows, config.max_seq_len, on_status)
    else:
        metrics = base_vs_adapter(config, model, tokenizer, eval_rows, options, loaded, on_status=on_status)
    emit("metrics", metrics)

    # 6. Save atomically: the adapter appears in the list complete or not at all.
    metadata = {
        "task": config.task, "method": config.method, "approach": config.resolved_approach,
        "kind": "encoder-head-lora" if config.resolved_approach == "head" else "causal-lm-lora",
        "base_model": config.base, "base_choice": choice.reason if choice else None, "labels": options.get("labels") or options.get("tag_labels"),
        "entity_types": options.get("entity_types"),
        "prompt_version": getattr(task_module(config.task), "PROMPT_VERSION", None)
        if config.task not in ("instruction", "unsupervised", "preference") else None,
        "prompt_format": "chat-template" if config.resolved_approach == "generative" else "encoder-head",
        "task_options": {k: v for k, v in options.items() if k != "tag_labels"},
        "hyperparameters": {k: v for k, v in config.to_dict().items() if k not in ("data", "data_dir", "output", "output_dir")},
        "data_file": Path(config.data).name, "data_fingerprint": dataset.fingerprint,
        "train_rows": len(train_rows), "validation_rows": len(val_rows), "pseudo_labels_used": pseudo_used,
        "round_2": round_2,
        "metrics": metrics, "steps": result.steps, "world_size": processes, "fast_lora": result.fast_lora,
        "early_stopping": {"patience": config.early_stopping_patience, "best_step": result.best_step,
                           "best_val_loss": result.best_val_loss, "stopped_early": result.stopped_early},
        "train_seconds": round(result.seconds, 1),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    name = config.output or run_id
    target_root = Path(config.output_dir) if config.output_dir else Path(config.data_dir) / "adapters"
    publishing = AdapterStore(target_root).staging(name)
    with publishing as staging:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        shutil.copyfile(run_dir / "metrics.jsonl", staging / "metrics.jsonl")
        write_metadata(staging, {"name": publishing.requested_name, **metadata})
    info = publishing.info
    tokens_per_second = result.tokens_processed / max(result.seconds, 1e-9)
    summary = RunSummary(run_id, "finished", result.steps, info.name, str(info.path), metrics,
                         time.perf_counter() - began, tokens_per_second, pseudo_used, round_2, result.best_step,
                         result.stopped_early)
    emit("finished", summary.__dict__)
    return summary
