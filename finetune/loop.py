"""The training loop: AdamW on the trainable (LoRA / head) parameters, warm-up + linear decay (transformers'),
gradient accumulation, periodic validation loss, early stopping with the best step's weights kept
(``finetune/early_stopping.py``), checkpoints for Stop/Resume, a JSONL log.

Every step is visible here (nanoGPT style); accelerate supplies the device, the backward pass
and, under torchrun / accelerate launch, DistributedDataParallel: each process trains on its
share of every global batch and rank 0 alone logs, validates and checkpoints
(``finetune/distributed.py``). On a CPU the LoRA layers run on the fast path of
``finetune/cpu_lora.py`` (base dequantized once, bf16 matmuls where the CPU has bf16 instructions,
fp32 elsewhere); everything else computes in fp32, with denormals flushed (they once made AdamW many times slower).
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from assistant.core.atomic_files import atomic_write, atomic_write_text
from finetune.cpu_lora import fast_lora_forward
from finetune.distributed import from_main
from finetune.early_stopping import LOSS_DECIMALS, EarlyStopping
from finetune.encode import IGNORE, collate, length_grouped_batches


@dataclass
class LoopSettings:
    learning_rate: float
    batch_size: int
    grad_accum: int
    total_steps: int
    eval_every: int
    save_every: int
    seed: int
    fast_lora: str = "auto"
    """The CPU fast path of ``finetune/cpu_lora.py``: auto, bf16, fp32 or off."""
    patience: int = 0
    """Validations without improvement before stopping early; 0: every step (the best weights kept either way)."""


@dataclass
class LoopResult:
    steps: int
    status: str  # "finished" | "stopped"
    train_loss: float
    val_loss: float | None
    target_tokens: int
    tokens_processed: int
    seconds: float
    fast_lora: str = "off"
    """How the LoRA layers ran: bf16 / fp32 (the CPU fast path) or "off: <why>"."""
    best_step: int | None = None
    """The step whose weights the model holds at the end (lowest validation loss); None without validation."""
    best_val_loss: float | None = None
    stopped_early: bool = False
    """Validation loss stopped improving before ``total_steps`` (the status is "finished" then)."""


def steps_for(n_examples: int, batch_size: int, grad_accum: int, epochs: float, max_steps: int) -> int:
    if max_steps > 0:
        return max_steps
    per_epoch = math.ceil(n_examples / batch_size / grad_accum)
    return max(1, math.ceil(per_epoch * epochs))


def linear_schedule(optimizer, total_steps: int, start_step: int = 0):
    """transformers' warm-up + linear decay over ``total_steps`` (warm-up: a tenth, 1 to 100 steps), placed at
    ``start_step`` so that a later phase (semi-supervised round 2) continues the count."""
    from transformers import get_linear_schedule_with_warmup

    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])  # what a schedule placed past step 0 starts from
    return get_linear_schedule_with_warmup(optimizer, max(1, min(100, total_steps // 10)), total_steps,
                                           last_epoch=start_step - 1)


def _forward_loss(model, batch, forward=None) -> tuple[torch.Tensor, int]:
    """(mean loss, target tokens); ``forward`` is the model to call when it is wrapped (DDP)."""
    forward = forward or model
    if batch["labels"].dim() > 1 and _predicts_next_tokens(model):
        targets = batch["labels"][:, 1:]  # the token each position predicts
        positions = (targets != IGNORE).any(0).nonzero().squeeze(1)
        if len(positions):
            return _next_token_loss(forward, batch, targets, positions)
    out = forward(**batch)
    tokens = int((batch["labels"] != IGNORE).sum()) if batch["labels"].dim() > 1 else len(batch["labels"])
    return out.loss, tokens


def _next_token_loss(model, batch, targets: torch.Tensor, positions: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Causal-LM loss with logits only at the positions that predict a target token.

    In supervised fine-tuning most positions are prompt (label -100); transformers' own loss
    still runs the lm_head and a vocabulary-wide softmax there (49k wide for SmolLM2), which is
    a large share of a CPU training step and most of its memory. Same value: the mean
    cross-entropy over target tokens.
    """
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                   logits_to_keep=positions).logits  # [batch, positions, vocab]
    picked = targets[:, positions]
    loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=IGNORE)
    return loss, int((picked != IGNORE).sum())


def _predicts_next_tokens(model) -> bool:
    """A causal LM whose forward takes ``logits_to_keep`` (transformers' decoder-only models do)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return _keeps_selected_logits(type(base))


@functools.cache
def _keeps_selected_logits(model_class: type) -> bool:
    """Asked for every micro-batch; a class's forward signature does not change, so read it once."""
    return (model_class.__name__.endswith("ForCausalLM")
            and "logits_to_keep" in inspect.signature(model_class.forward).parameters)


@torch.no_grad()
def validation_loss(model, examples: list[dict], batch_size: int, pad_id: int) -> float | None:
    if not examples:
        return None
    was_training = model.training
    model.eval()
    total, weight = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples[start:start + batch_size], pad_id)
        loss, tokens = _forward_loss(model, batch)
        total += float(loss) * tokens
        weight += tokens
    model.train(was_training)
    return total / max(weight, 1)


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def save_checkpoint(folder: Path, model, optimizer, scheduler, step: int, log_state: dict) -> None:
    """Write trainable weights + optimizer and LR-schedule state + step atomically (temp file, then rename)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "trainable": {n: p.detach().clone() for n, p in _trainable(model).items()},
             "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "log_state": log_state}
    atomic_write(folder / "checkpoint.pt", lambda temp: torch.save(state, temp))


def load_checkpoint(folder: Path, model, optimizer, scheduler) -> tuple[int, dict]:
    """Restore a checkpoint written by ``save_checkpoint`` (our own file: tensors and plain types only)."""
    state = torch.load(folder / "checkpoint.pt", weights_only=True)
    params = _trainable(model)
    missing = set(params) - set(state["trainable"])
    if missing:
        raise ValueError(f"checkpoint does not match this model: {sorted(missing)[:3]} missing")
    with torch.no_grad():
        for name, tensor in state["trainable"].items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(state["optimizer"])
    step = int(state["step"])
    if "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    else:  # written before the schedule was saved: place it at the checkpoint's step
        scheduler.last_epoch = step
        for group, base, factor in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
            group["lr"] = base * factor(step)
    return step, state.get("log_state", {})


def _truncate_log(path: Path, last_step: int) -> None:
    if not path.is_file():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= last_step]
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def train(
    model,
    train_examples: list[dict],
    val_examples: list[dict],
    settings: LoopSettings,
    pad_id: int,
    run_dir: Path,
    on_step: Callable[[dict], None] | None = None,
    stop_event: threading.Event | None = None,
    resume: bool = False,
    start_step: int = 0,
    best_so_far: EarlyStopping | None = None,
) -> LoopResult:
    """Train until ``total_steps``, until validation loss has not improved for ``settings.patience``
    validations, or until ``stop_event`` is set (then checkpoint and return). A run that ends without a Stop
    returns with the weights of its lowest validation loss.

    ``start_step`` and ``best_so_far`` continue an earlier phase (semi-supervised round 2): its step count,
    and its best weights, which this phase must beat.
    """
    from accelerate import Accelerator

    on_cpu = not next(iter(model.parameters())).is_cuda
    if on_cpu:
        torch.set_flush_denormal(True)  # process-wide CPU state: switched off again when training ends
    torch.manual_seed(settings.seed)
    accelerator = Accelerator(cpu=on_cpu)
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    optimizer = torch.optim.AdamW(list(_trainable(model).values()), lr=settings.learning_rate, weight_decay=0.0)
    scheduler = linear_schedule(optimizer, settings.total_steps, start_step)
    step, log_state = (load_checkpoint(run_dir, model, optimizer, scheduler) if resume else (start_step, {}))
    tracker = (EarlyStopping.from_state(settings.patience, log_state.get("early_stopping")) if resume
               else best_so_far or EarlyStopping(settings.patience))
    forward = model
    if world > 1:  # DDP (or the FSDP / DeepSpeed plugin of the accelerate config) around model and optimizer
        forward, optimizer = accelerator.prepare(model, optimizer, device_placement=[False, False])
    target_tokens = int(log_state.get("target_tokens", 0))
    tokens_processed = int(log_state.get("tokens_processed", 0))
    elapsed_before = float(log_state.get("seconds", 0.0))
    if resume and main:
        _truncate_log(run_dir / "metrics.jsonl", step)  # steps after the checkpoint are run again
    log = open(run_dir / "metrics.jsonl", "a", encoding="utf-8") if main else open(os.devnull, "w")
    device = next(model.parameters()).device
    model.train()

    def batches_forever():
        """This rank's share of each global batch (batch_size per process, the same order on every rank)."""
        epoch = 0
        while True:
            for batch in length_grouped_batches(train_examples, settings.batch_size * world, settings.seed, epoch):
                if len(batch) >= world:  # a short last batch would leave a rank with nothing to do
                    yield batch[rank::world]
            epoch += 1

    batches = batches_forever()
    # Resuming skips the batches already seen, so the data order matches an uninterrupted run.
    for _ in range((step - start_step) * settings.grad_accum):
        next(batches)

    began = time.perf_counter()

    def _log_state() -> dict:
        return {"target_tokens": target_tokens, "tokens_processed": tokens_processed,
                "seconds": elapsed_before + time.perf_counter() - began, "early_stopping": tracker.state()}

    loss_value, val = math.nan, None
    status = "finished"
    fast_path = ExitStack()
    try:
        fast_mode = fast_path.enter_context(fast_lora_forward(model, settings.fast_lora))
        while step < settings.total_steps:
            if stop_event is not None and stop_event.is_set():
                status = "stopped"
                break
            lr = optimizer.param_groups[0]["lr"]  # this step's, from the schedule
            step_loss, step_tokens = 0.0, 0
            for micro in range(settings.grad_accum):
                batch = {k: v.to(device) for k, v in collate(next(batches), pad_id).items()}
                last = micro == settings.grad_accum - 1
                with nullcontext() if last or world == 1 else accelerator.no_sync(forward):  # all-reduce once per step
                    loss, tokens = _forward_loss(model, batch, forward)
                    accelerator.backward(loss / settings.grad_accum)
                step_loss += float(loss.detach()) / settings.grad_accum
                step_tokens += int(batch["attention_mask"].sum())
                target_tokens += tokens
            if world > 1:  # the log shows the mean over ranks and every rank's tokens
                step_loss = float(accelerator.reduce(torch.tensor(step_loss, device=device), "mean"))
                step_tokens = int(accelerator.reduce(torch.tensor(step_tokens, device=device), "sum"))
            tokens_processed += step_tokens
            accelerator.clip_grad_norm_(list(_trainable(model).values()), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            loss_value = step_loss
            seconds = elapsed_before + time.perf_counter() - began
            record = {"step": step, "total_steps": settings.total_steps, "loss": round(step_loss, 5),
                      "lr": lr, "seconds": round(seconds, 2), "tokens": step_tokens}
            if step % settings.eval_every == 0 or step == settings.total_steps:
                # Every rank gets rank 0's loss: all keep the same best weights and stop at the same step.
                val = from_main(validation_loss(model, val_examples, settings.batch_size, pad_id) if main else None)
                val = None if val is None else round(val, LOSS_DECIMALS)
                record["val_loss"] = val
                record["best"] = tracker.update(step, val, model)
                if tracker.should_stop and step < settings.total_steps:
                    record.update(stopped_early=True, best_step=tracker.best_step)
            log.write(json.dumps(record) + "\n")
            log.flush()
            if on_step and main:
                on_step(record)
            if tracker.should_stop:
                break
            if main and step % settings.save_every == 0 and step < settings.total_steps:
                save_checkpoint(run_dir, model, optimizer, scheduler, step, _log_state())
    finally:
        fast_path.close()  # the PEFT forward again: evaluation and saving see the 4-bit model
        log.close()
        if on_cpu:
            torch.set_flush_denormal(False)
    seconds = elapsed_before + time.perf_counter() - began
    if status == "stopped" and main:
        save_checkpoint(run_dir, model, optimizer, scheduler, step, _log_state())
    elif status == "finished":
        tracker.restore(model)
    model.eval()
    return LoopResult(step, status, loss_value, val, target_tokens, tokens_processed, seconds, fast_mode,
                      tracker.best_step, tracker.best_val_loss, status == "finished" and step < settings.total_steps)
