"""Keep the weights of the best validation step and stop when validation loss has not improved for a while.

Small datasets overfit: training loss goes on falling while validation loss turns up. The training loop
(``finetune/loop.py``) hands every validation loss to an ``EarlyStopping``; it keeps a CPU copy of the
trainable weights (LoRA and head only, a few MB) whenever the loss is the lowest so far, counts the
validations since, and says when that count reaches the patience. At the end of a run the kept weights go
back into the model, so the saved adapter is the best one, not the last. ``state()`` / ``from_state()``
carry all of it through a Stop/Resume checkpoint.

    tracker = EarlyStopping(patience=3)
    tracker.update(step, val_loss, model)     # True when this validation is the best so far
    tracker.should_stop                       # True after 3 validations without improvement (0: never)
    tracker.restore(model)                    # the best weights back into the model

Tests: ``pytest tests/test_early_stopping.py -q``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

LOSS_DECIMALS = 5
"""Validation losses are compared as logged (rounded to this many decimals): a smaller gain is noise, and the
loss plot's lowest point is then always the kept step."""


def trainable_weights(model) -> dict[str, torch.Tensor]:
    """A CPU copy of the parameters that train (LoRA, head)."""
    return {n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad}


@dataclass
class EarlyStopping:
    """Best validation loss so far, its step and weights, and the validations since it."""

    patience: int
    """Validations without improvement before stopping; 0 keeps the best weights but never stops early."""
    best_step: int | None = None
    """The step whose weights are kept (None before the first validation)."""
    best_val_loss: float | None = None
    """Its validation loss, rounded to ``LOSS_DECIMALS``."""
    bad_validations: int = 0
    """Validations since the best one."""
    best_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    """The kept trainable weights, on the CPU."""

    def __post_init__(self):
        if isinstance(self.patience, bool) or not isinstance(self.patience, int) or self.patience < 0:
            raise ValueError(f"patience must be a whole number of validations, 0 or more; got {self.patience!r}")

    @classmethod
    def from_state(cls, patience: int, state: dict | None) -> EarlyStopping:
        """The tracker saved by ``state()`` (a checkpoint written before early stopping existed: a fresh one)."""
        if not state:
            return cls(patience)
        loss = state.get("best_val_loss")
        step = state.get("best_step")
        return cls(patience, None if step is None else int(step), None if loss is None else float(loss),
                   int(state.get("bad_validations", 0)), state.get("best_weights"))

    @classmethod
    def starting_at(cls, patience: int, model, step: int | None, val_loss: float | None) -> EarlyStopping:
        """A tracker whose best so far is ``model`` as it is now, at ``step`` (a later phase continues from it)."""
        if step is None or val_loss is None:
            return cls(patience)
        return cls(patience, step, val_loss, 0, trainable_weights(model))

    def state(self) -> dict:
        """Plain types and tensors only (checkpoints are loaded with ``weights_only=True``)."""
        return {"best_step": self.best_step, "best_val_loss": self.best_val_loss,
                "bad_validations": self.bad_validations, "best_weights": self.best_weights}

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_validations >= self.patience

    def update(self, step: int, val_loss: float | None, model) -> bool:
        """Take one validation; True (and the weights copied) when it is strictly the lowest so far.
        ``None`` (no validation rows) changes nothing; a NaN loss counts as no improvement."""
        if val_loss is None:
            return False
        loss = round(float(val_loss), LOSS_DECIMALS)
        if math.isfinite(loss) and (self.best_val_loss is None or loss < self.best_val_loss):
            self.best_step, self.best_val_loss, self.bad_validations = step, loss, 0
            self.best_weights = trainable_weights(model)
            return True
        self.bad_validations += 1
        return False

    def restore(self, model) -> bool:
        """Copy the kept weights back into ``model``; False when there are none (no validation happened)."""
        if self.best_weights is None:
            return False
        params = {n: p for n, p in model.named_parameters() if p.requires_grad}
        missing = set(params) - set(self.best_weights)
        if missing:
            raise ValueError(f"the kept weights do not match this model: {sorted(missing)[:3]} missing")
        with torch.no_grad():
            for name, tensor in self.best_weights.items():
                params[name].copy_(tensor)
        return True
