"""Compare what another engine computes with a transformers fp32 oracle, within a stated tolerance.

Two engines never compute bit-identical floats. llama.cpp keeps its KV cache in f16 by default: on the
tiny test model (tests/tiny_models.build_tiny_gguf) an f32 GGUF's logits differ from transformers fp32
by up to 0.0028 (2.6e-6 with an f32 cache), and the kernels sum in an order that depends on the CPU
(AVX2, AVX-512, AMX). Where the oracle's two best tokens are closer than that error, either engine may
pick either one: on an AMX Xeon one of 64 greedy steps had an oracle margin of 5e-6 and flipped. That is
no bug, so exact token equality across engines is not a test.

What is a test: with every logit within ``atol`` of the oracle's, two tokens can swap places only if
the oracle has them within ``2 * atol`` of each other. So at every step the engine's token must be the
oracle's best or within ``margin`` (default ``2 * LOGIT_ATOL``) of it; elsewhere (the oracle's top-2
margin above the bound) the argmax must agree. Bugs are far outside: a missing LoRA adapter or a doubled
LoRA scale moves this model's logits by 0.7 to 0.9, and a wrong prompt or sampler changes the tokens
at decisive steps.

Used by tests/test_export_gguf.py and tests/test_llama_cpp_engine.py; the comparison runs teacher-forced
along the engine's own tokens, so one near-tie does not make the rest of a reply incomparable.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

LOGIT_ATOL = 0.01  # f32 GGUF vs transformers fp32: f16 KV cache, measured max 0.0028 on the tiny model
TIE_MARGIN = 2 * LOGIT_ATOL  # logits within atol can only swap tokens the oracle has within 2 * atol


def oracle_logits(model, prompt: list[int], continuation: list[int]) -> np.ndarray:
    """Teacher-forced next-token logits of a transformers model: row i predicts ``continuation[i]``
    from ``prompt + continuation[:i]`` (shape: len(continuation) x vocab, float32)."""
    with torch.no_grad():
        logits = model(torch.tensor([prompt + continuation[:-1]])).logits[0, len(prompt) - 1:]
    return logits.float().numpy()


def penalised(logits: np.ndarray, prompt: list[int], continuation: list[int], penalty: float) -> np.ndarray:
    """``oracle_logits`` after transformers' own repetition penalty over the prompt and the reply so far."""
    from transformers import RepetitionPenaltyLogitsProcessor

    processor = RepetitionPenaltyLogitsProcessor(penalty)
    rows = [processor(torch.tensor([prompt + continuation[:i]]), torch.tensor(logits[i:i + 1]))[0]
            for i in range(len(continuation))]
    return torch.stack(rows).numpy()


def top2_margin(logits: np.ndarray) -> np.ndarray:
    """Per step, how far the oracle's best token is ahead of its runner-up."""
    ordered = np.sort(logits, axis=-1)
    return ordered[..., -1] - ordered[..., -2]


def decisive_disagreements(oracle: np.ndarray, chosen: list[int], margin: float = TIE_MARGIN) -> list[tuple]:
    """Steps where the engine chose a token the oracle ranks more than ``margin`` below its best:
    [(step, chosen token, oracle's best, how far behind)]. Empty means the engine agrees with the oracle
    everywhere except at near-ties, where the engine's pick is one of the tied tokens."""
    found = []
    for step, token in enumerate(chosen):
        best = int(oracle[step].argmax())
        behind = float(oracle[step, best] - oracle[step, token])
        if behind > margin:
            found.append((step, int(token), best, round(behind, 5)))
    return found


def follows_oracle(oracle: np.ndarray, chosen: list[int], margin: float = TIE_MARGIN) -> int:
    """Assert the engine's tokens agree with the oracle except at near-ties (``decisive_disagreements``);
    return how many steps were decisive (oracle top-2 margin above ``margin``), so that a caller can
    require the comparison to have had teeth."""
    disagreements = decisive_disagreements(oracle, chosen, margin)
    assert not disagreements, f"(step, engine's token, oracle's token, logit gap) beyond {margin}: {disagreements}"
    return int((top2_margin(oracle) > margin).sum())


def engine_greedy_ids(loaded, prompt: list[int], settings, end_token: int) -> list[int]:
    """The token ids the app's engine produces for ``prompt`` with ``settings`` (through
    ``loaded.engine.decode``, holding the model lock), with ``end_token`` appended when it stopped on an
    end-of-generation token before ``settings.max_new_tokens``: that too was a choice to compare."""
    produced: list[int] = []
    with loaded.lock:
        loaded.engine.decode(prompt, settings, threading.Event(), produced.append)
    return produced + [end_token] if len(produced) < settings.max_new_tokens else produced
