"""Preference tuning (``--method preference``): DPO or ORPO with TRL's trainers, on prompt / chosen / rejected pairs,
or KTO (``finetune/kto.py``) on pairs or unpaired prompt / completion / label rows.

    python -m finetune --method preference --data finetune/samples/preference_pairs.jsonl --max-steps 20
    python -m finetune --method preference --preference-loss orpo --beta 0.1 --data pairs.jsonl

The recipe builds the same 4-bit base + LoRA as supervised fine-tuning and hands it to TRL's
``DPOTrainer`` (the reference model is the base with the adapter switched off, so no second
copy is loaded) or ``ORPOTrainer`` (no reference). Progress goes to the run's ``metrics.jsonl``
and the caller's ``on_step`` like the supervised loop; a stop request ends at the next step with a
TRL checkpoint that ``resume=True`` continues from. With validation pairs, the trainer's loss on them is
measured every ``eval_interval`` steps, a checkpoint is saved at each, the one with the lowest loss is
loaded at the end (``load_best_model_at_end``) and transformers' ``EarlyStoppingCallback`` ends training
after ``--early-stopping-patience`` validations without improvement.

Evaluation, base vs adapter on the validation pairs: **reward accuracy** (the share of pairs
whose chosen answer gets a higher mean per-token log-likelihood than the rejected one, given the
prompt) and **margin** (the mean of that gap, in nats per token). Both are defined for the base
model too, which DPO's implicit reward is not (it is zero at the start); the per-token mean keeps
a long chosen answer from losing to a short rejected one only for being long.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import torch

from assistant.core.errors import InputError
from finetune.early_stopping import LOSS_DECIMALS
from finetune.encode import encode_sft
from finetune.answer_likelihood import base_and_adapter_margins
from finetune.kto import is_unpaired
from finetune.loop import LoopResult

TRAINER_DIR = "preference-trainer"


def conversational(rows: list[dict]) -> list[dict]:
    """Canonical pairs in TRL's conversational preference format (its chat template renders them)."""
    return [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "chosen": [{"role": "assistant", "content": r["chosen"]}],
             "rejected": [{"role": "assistant", "content": r["rejected"]}]} for r in rows]


def _validation_args(config, total_steps: int) -> dict:
    """Trainer arguments that validate every ``eval_interval`` steps and keep the best checkpoint (saved at
    every validation: the best one can only be loaded back if it was saved). Two checkpoints are kept, the best
    and the latest: with a limit of one the trainer deletes the latest at the end, and a Stop's checkpoint with
    it. A resumed run takes the early-stopping counter from its checkpoint too (the best loss and checkpoint
    are in the trainer state)."""
    every = config.eval_interval(total_steps)
    return dict(eval_strategy="steps", eval_steps=every, save_steps=every, per_device_eval_batch_size=config.batch_size,
                load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
                save_total_limit=2, restore_callback_states_from_checkpoint=True)


def _trainer(config, model, tokenizer, rows: list[dict], run_dir: Path, total_steps: int, callbacks: list,
             val_rows: list[dict]):
    from datasets import Dataset
    from transformers import EarlyStoppingCallback

    common = dict(output_dir=str(run_dir / TRAINER_DIR), per_device_train_batch_size=config.batch_size,
                  gradient_accumulation_steps=config.grad_accum, learning_rate=config.learning_rate,
                  max_steps=total_steps, lr_scheduler_type="linear", warmup_steps=max(1, total_steps // 10),
                  logging_steps=1, save_steps=config.save_every, save_total_limit=1, report_to="none",
                  seed=config.seed, use_cpu=not torch.cuda.is_available(), bf16=torch.cuda.is_available(),
                  max_length=config.max_seq_len, beta=config.beta, disable_tqdm=True,
                  remove_unused_columns=False, gradient_checkpointing=torch.cuda.is_available())
    datasets = dict(processing_class=tokenizer, callbacks=list(callbacks))
    if val_rows:
        common.update(_validation_args(config, total_steps))
        if config.early_stopping_patience > 0:
            datasets["callbacks"].append(EarlyStoppingCallback(config.early_stopping_patience))
    if config.preference_loss == "kto":
        from finetune.kto import kto_trainer

        return kto_trainer(common, model, tokenizer, rows, list(val_rows), datasets["callbacks"], config.seed)
    check_preference_rows(config, rows)
    datasets["train_dataset"] = Dataset.from_list(conversational(rows))
    if val_rows:
        datasets["eval_dataset"] = Dataset.from_list(conversational(val_rows))
    if config.preference_loss == "orpo":
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        return ORPOTrainer(model=model, args=ORPOConfig(**common), **datasets)
    from trl import DPOConfig, DPOTrainer

    return DPOTrainer(model=model, args=DPOConfig(**common, loss_type=["sigmoid"]), **datasets)


def check_preference_rows(config, rows: list[dict]) -> None:
    """DPO and ORPO need pairs: InputError naming KTO for unpaired rows (checked before the model loads)."""
    if config.preference_loss == "kto":
        from finetune.kto import check_kto_rows, kto_rows

        check_kto_rows(kto_rows(rows))
    elif is_unpaired(rows):
        raise InputError(f"{config.preference_loss.upper()} learns from pairs (prompt, chosen, rejected); this data "
                         "has one rated answer per row (prompt, completion, label): use --preference-loss kto.")


def _progress_callback(log_path: Path, total_steps: int, on_step, stop_event: threading.Event | None, began: float):
    from transformers import TrainerCallback

    class Progress(TrainerCallback):
        """TRL's logs -> the run's metrics.jsonl records (a step's validation loss joins its record: the trainer
        logs the training loss first, then validates); a stop request -> checkpoint and stop."""

        pending: dict | None = None

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "eval_loss" in logs and self.pending is not None:
                val = float(logs["eval_loss"])  # compared as the trainer does (state.best_metric: the best before it)
                self.pending.update(val_loss=round(val, LOSS_DECIMALS),
                                    best=state.best_metric is None or val < state.best_metric)
                return self._write()
            if not logs or "loss" not in logs:
                return
            record = {"step": state.global_step, "total_steps": total_steps, "loss": round(float(logs["loss"]), 5),
                      "lr": float(logs.get("learning_rate", 0.0)), "seconds": round(time.perf_counter() - began, 2)}
            for key in ("rewards/accuracies", "rewards/margins"):
                if key in logs:
                    record[key.replace("rewards/", "reward_")] = round(float(logs[key]), 5)
            self.pending = record
            if not control.should_evaluate:
                self._write()

        def _write(self):
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(self.pending) + "\n")
            if on_step:
                on_step(self.pending)
            self.pending = None

        def on_step_end(self, args, state, control, **kwargs):
            if stop_event is not None and stop_event.is_set() and state.global_step < total_steps:
                control.should_save = True
                control.should_training_stop = True

    return Progress()


def train_preference(config, model, tokenizer, rows: list[dict], run_dir: Path, total_steps: int,
                     on_step=None, stop_event: threading.Event | None = None, resume: bool = False,
                     val_rows: list[dict] = ()) -> LoopResult:
    """Train ``model`` (a PeftModel) on preference ``rows``; returns when finished or stopped. With ``val_rows``
    the model returned holds the checkpoint of the lowest validation loss (see the module docstring)."""
    log_path = run_dir / "metrics.jsonl"
    checkpoints = sorted((run_dir / TRAINER_DIR).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    if not (resume and checkpoints):
        log_path.write_text("")
    began = time.perf_counter()
    trainer = _trainer(config, model, tokenizer, rows, run_dir, total_steps,
                       [_progress_callback(log_path, total_steps, on_step, stop_event, began)], list(val_rows))
    output = trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None)
    state = trainer.state
    steps = state.global_step
    status = "stopped" if steps < total_steps and stop_event is not None and stop_event.is_set() else "finished"
    model.eval()
    last_val = next((r["eval_loss"] for r in reversed(state.log_history) if "eval_loss" in r), None)
    best = None if state.best_metric is None else round(state.best_metric, LOSS_DECIMALS)
    return LoopResult(steps, status, float(output.training_loss), last_val, 0, 0, time.perf_counter() - began,
                      best_step=state.best_global_step if best is not None else None, best_val_loss=best,
                      stopped_early=status == "finished" and steps < total_steps)


def encode_pairs(rows: list[dict], tokenizer, max_len: int) -> list[dict]:
    """Each pair as two supervised examples (prompt masked): chosen at even, rejected at odd positions. An unpaired
    row (KTO) is one example, its completion."""
    examples = []
    for row in rows:
        messages = [{"role": "user", "content": row["prompt"]}]
        if "completion" in row:
            examples.append(encode_sft(tokenizer, messages, row["completion"], max_len))
            continue
        examples += [encode_sft(tokenizer, messages, row["chosen"], max_len),
                     encode_sft(tokenizer, messages, row["rejected"], max_len)]
    return examples


def preference_metrics(model, tokenizer, rows: list[dict], max_len: int, on_status=None) -> dict:
    """{"base": {...}, "adapter": {...}}: reward accuracy and mean margin on ``rows`` (unpaired rows: see
    ``finetune.kto.unpaired_metrics``)."""
    if is_unpaired(rows):
        from finetune.kto import unpaired_metrics

        return unpaired_metrics(model, tokenizer, rows, max_len, on_status)
    examples = encode_pairs(rows, tokenizer, max_len)  # chosen, rejected, chosen, rejected, ...
    pairs = [(i, i + 1) for i in range(0, len(examples), 2)]
    return base_and_adapter_margins(model, tokenizer.pad_token_id, examples, pairs,
                                    f"{len(rows)} validation pairs", on_status)
