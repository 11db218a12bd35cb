"""The fast CPU decoder: exactness against transformers, KV cache, stopping, sampling, and the engine.

The tiny Llama is loaded in NF4 (as the app serves its default model) and compared with an fp32
transformers copy whose linear weights are replaced by the decoder's own int8 values, so only
bf16 activation rounding separates the two.

    pytest tests/test_fast_decode.py -q                 # tiny model
    pytest tests/test_fast_decode.py -q -m real         # also the embedded SmolLM2 (NF4)
"""

import threading

import pytest
import torch
from transformers import AutoModelForCausalLM
from transformers.generation.logits_process import (
    LogitsProcessorList,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from assistant.chat import ChatEngine, GenerationSettings
from assistant.fast_decode import FastDecoder, dequantized_weight, eos_token_ids, process_logits
from assistant.loading import load_causal_lm

PROMPT = [1, 40, 73, 2, 1, 120, 9, 250, 31, 77, 2, 1, 301]
GREEDY = GenerationSettings(temperature=0, max_new_tokens=24, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def sharp_llm_dir(tiny_llm_dir, tmp_path_factory):
    """The tiny Llama with 10x larger query and key weights: at random init attention is nearly
    uniform, so a broken RoPE or KV cache would go unnoticed."""
    model = AutoModelForCausalLM.from_pretrained(tiny_llm_dir, dtype=torch.float32)
    for block in model.model.layers:
        block.self_attn.q_proj.weight.data *= 10
        block.self_attn.k_proj.weight.data *= 10
    folder = tmp_path_factory.mktemp("models") / "sharp-llama"
    model.save_pretrained(folder)
    load_causal_lm(str(tiny_llm_dir), quant="fp32").tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_nf4(sharp_llm_dir):
    return load_causal_lm(str(sharp_llm_dir), quant="nf4")


@pytest.fixture(scope="module")
def decoder(tiny_nf4):
    return FastDecoder(tiny_nf4.model)


@pytest.fixture(scope="module")
def reference(sharp_llm_dir, decoder):
    """fp32 transformers Llama computing with exactly the decoder's (dequantized int8) weights."""
    model = AutoModelForCausalLM.from_pretrained(sharp_llm_dir, dtype=torch.float32).eval()
    q_rows, kv_rows = decoder.heads * decoder.head_dim, decoder.kv_heads * decoder.head_dim
    for block, layer in zip(model.model.layers, decoder.layers):
        qkv, gate_up = layer.qkv.dequantized(), layer.gate_up.dequantized()
        block.self_attn.q_proj.weight.data = qkv[:q_rows]
        block.self_attn.k_proj.weight.data = qkv[q_rows:q_rows + kv_rows]
        block.self_attn.v_proj.weight.data = qkv[q_rows + kv_rows:]
        block.self_attn.o_proj.weight.data = layer.o.dequantized()
        block.mlp.gate_proj.weight.data = gate_up[:decoder.intermediate]
        block.mlp.up_proj.weight.data = gate_up[decoder.intermediate:]
        block.mlp.down_proj.weight.data = layer.down.dequantized()
    model.lm_head.weight = torch.nn.Parameter(decoder.lm_head.dequantized())  # unties it from the embedding
    return model


def full_logits(decoder, ids):
    with torch.inference_mode():
        return decoder.forward(torch.tensor(ids), 0, decoder.new_cache(len(ids)), all_logits=True)


def assert_close_to_bf16(actual, expected):
    scale = expected.abs().max()
    assert (actual - expected).abs().max() <= 0.03 * scale, "beyond bf16 activation rounding"


def test_int8_weights_stay_close_to_the_nf4_weights(tiny_nf4, decoder):
    nf4 = dequantized_weight(tiny_nf4.model.model.layers[1].mlp.down_proj)
    int8 = decoder.layers[1].down.dequantized()
    assert (int8 - nf4).abs().max() <= nf4.abs().amax(1).max() / 254 * 1.01  # half an int8 step of the row
    assert decoder.layers[0].qkv.weight.dtype == torch.int8


def test_both_bitsandbytes_4bit_layouts_dequantize_alike(sharp_llm_dir):
    loaded = load_causal_lm(str(sharp_llm_dir), quant="nf4")
    layer = loaded.model.model.layers[0].self_attn.q_proj
    before = dequantized_weight(layer)
    with torch.inference_mode():
        loaded.model(torch.tensor([PROMPT]))  # bitsandbytes repacks for its AVX512-BF16 kernel here
    if not getattr(layer.weight.quant_state, "packing_format_for_cpu", False):
        pytest.skip("this CPU has no AVX512-BF16: bitsandbytes keeps the standard layout")
    after = dequantized_weight(layer)
    assert torch.allclose(after, before, rtol=2**-8, atol=0)  # absmax is rounded to bf16 when packed


def test_logits_match_transformers_with_the_same_weights(decoder, reference):
    with torch.inference_mode():
        expected = reference(torch.tensor([PROMPT])).logits[0]
    assert_close_to_bf16(full_logits(decoder, PROMPT), expected)


def test_greedy_tokens_equal_transformers_generate(decoder, reference):
    prompt = torch.tensor([PROMPT])
    with torch.inference_mode():
        out = reference.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=24,
                                 min_new_tokens=24, do_sample=False, pad_token_id=0)
    assert list(decoder.generate(PROMPT, 24)) == out[0, len(PROMPT):].tolist()


def test_greedy_with_repetition_penalty_picks_the_references_best_token_every_step(decoder, reference):
    # A strong penalty flattens this random model's scores into near-ties (margins of 2e-4), where
    # bf16 rounding may pick the other token; so check each pick against the reference's scores.
    tokens = list(decoder.generate(PROMPT, 24, repetition_penalty=3.0))
    sequence = torch.tensor([PROMPT + tokens])
    with torch.inference_mode():
        logits = reference(sequence).logits[0]
    for step, token in enumerate(tokens):
        position = len(PROMPT) + step
        scores = RepetitionPenaltyLogitsProcessor(3.0)(sequence[:, :position], logits[position - 1][None].clone())[0]
        assert scores[token] >= scores.max() - 0.03 * scores.abs().max(), f"step {step} picked a worse token"


def test_prefill_then_single_steps_equal_one_forward_over_everything(decoder):
    sequence = PROMPT + [17, 230, 5, 99, 140, 8, 61, 300, 12, 44, 7, 190]  # 25 tokens: prefill takes the GEMM path
    whole = full_logits(decoder, sequence)
    cache = decoder.new_cache(len(sequence))
    with torch.inference_mode():
        steps = [decoder.forward(torch.tensor(sequence[:len(PROMPT)]), 0, cache)[0]]
        steps += [decoder.forward(torch.tensor([token]), position, cache)[0]
                  for position, token in enumerate(sequence[len(PROMPT):], start=len(PROMPT))]
    assert_close_to_bf16(torch.stack(steps[:-1]), whole[len(PROMPT) - 1:-1])
    assert torch.equal(torch.stack(steps).argmax(-1), whole[len(PROMPT) - 1:].argmax(-1))


def test_stop_event_ends_decoding_at_the_next_token(decoder):
    stop = threading.Event()
    produced = []
    for token in decoder.generate(PROMPT, 50, stop_event=stop):
        produced.append(token)
        if len(produced) == 3:
            stop.set()
    assert len(produced) == 3


def test_an_eos_id_ends_decoding_and_is_yielded(decoder):
    first = next(decoder.generate(PROMPT, 2))
    assert list(decoder.generate(PROMPT, 20, eos_ids=[99999, first])) == [first]
    assert len(list(decoder.generate(PROMPT, 7))) == 7


@pytest.mark.parametrize("temperature, top_p, penalty, top_k",
                         [(0.7, 0.9, 1.1, 50), (1.3, 0.5, 0.8, 50), (0.2, 1.0, 2.5, 0), (1.0, 0.3, 1.0, 5)])
def test_logit_processing_equals_transformers(temperature, top_p, penalty, top_k):
    generator = torch.Generator().manual_seed(7)
    logits = torch.randn(400, generator=generator) * 4
    ids = torch.randint(0, 400, (30,), generator=generator)
    seen = torch.zeros(400, dtype=torch.bool)
    seen[ids] = True
    processors = [RepetitionPenaltyLogitsProcessor(penalty), TemperatureLogitsWarper(temperature)]
    processors += [TopKLogitsWarper(top_k)] if top_k else []
    processors += [TopPLogitsWarper(top_p)] if top_p < 1 else []
    expected = LogitsProcessorList(processors)(ids[None], logits[None].clone())[0]
    assert torch.equal(process_logits(logits, seen, temperature, top_p, penalty, top_k), expected)


def test_repetition_penalty_only_touches_tokens_already_seen():
    logits = torch.tensor([2.0, -2.0, 2.0, -2.0])
    seen = torch.tensor([True, True, False, False])
    assert process_logits(logits, seen, 0, 1.0, 2.0).tolist() == [1.0, -4.0, 2.0, -2.0]


def test_sampling_is_reproducible_with_a_seed_and_top_p_narrows_it(decoder):
    def sample(seed, top_p):
        torch.manual_seed(seed)
        return list(decoder.generate(PROMPT, 16, temperature=1.0, top_p=top_p, top_k=0))

    assert sample(3, 0.9) == sample(3, 0.9)
    assert sample(3, 1.0) != list(decoder.generate(PROMPT, 16))  # random weights: near-uniform choices
    assert sample(3, 1e-6) == sample(4, 1e-6) == list(decoder.generate(PROMPT, 16))  # only the top token


def test_eos_ids_come_from_the_generation_config(tiny_nf4):
    assert eos_token_ids(tiny_nf4.model) == [tiny_nf4.tokenizer.eos_token_id]


def test_engine_serves_the_nf4_model_with_the_fast_decoder(tiny_nf4, decoder):
    engine = ChatEngine(tiny_nf4)
    assert engine.uses_fast_decode() and not engine.uses_fast_decode("some-adapter")
    assert not ChatEngine(tiny_nf4, fast_decode=False).uses_fast_decode()
    chunks = list(engine.stream("hello there", [], "", GREEDY))
    assert len(chunks) >= 3 and all(later.startswith(earlier) for earlier, later in zip(chunks, chunks[1:]))
    ids, _ = engine.prompt_ids(engine.conversation("hello there", [], ""), GREEDY.max_new_tokens)
    tokens = decoder.generate(ids, GREEDY.max_new_tokens, eos_token_ids(tiny_nf4.model))
    assert chunks[-1] == engine.tokenizer.decode(list(tokens), skip_special_tokens=True)


def test_engine_stop_event_and_closing_release_the_model(tiny_nf4):
    engine = ChatEngine(tiny_nf4)
    long = GenerationSettings(temperature=0, max_new_tokens=200, repetition_penalty=1.0)
    stop, seen = threading.Event(), []
    for text in engine.stream("hello there", [], "", long, stop):
        seen.append(text)
        if len(seen) == 2:
            stop.set()
    assert len(seen) <= 4 and len(seen[-1]) < len(engine.reply("hello there", [], "", long))
    stream = engine.stream("hello there", [], "", long)
    next(stream)
    stream.close()
    assert tiny_nf4.lock.acquire(timeout=10)
    tiny_nf4.lock.release()


def test_fp32_models_keep_transformers_generate(tiny_loaded):
    assert not ChatEngine(tiny_loaded).uses_fast_decode()


def test_decoder_reads_base_weights_under_a_lora_wrapper(sharp_llm_dir, decoder):
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(load_causal_lm(str(sharp_llm_dir), quant="nf4").model,
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"]))
    rebuilt = FastDecoder(wrapped)
    assert torch.equal(rebuilt.layers[1].qkv.weight, decoder.layers[1].qkv.weight)
    assert torch.equal(full_logits(rebuilt, PROMPT), full_logits(decoder, PROMPT))


@pytest.mark.real
def test_real_model_answers_paris_in_english_and_streams_chinese(real_chat_loaded):
    engine = ChatEngine(real_chat_loaded)
    assert engine.uses_fast_decode()
    settings = GenerationSettings(temperature=0, max_new_tokens=32)
    english = list(engine.stream("What is the capital of France?", [], "", settings))
    assert len(english) > 2 and "Paris" in english[-1]
    chinese = list(engine.stream("你好！请用中文介绍一下你自己。", [], "", settings))
    assert all(later.startswith(earlier) for earlier, later in zip(chinese, chinese[1:]))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese[-1]) and "\ufffd" not in chinese[-1]


@pytest.mark.real
def test_real_model_fast_logits_agree_with_the_nf4_model(real_chat_loaded):
    model, tokenizer = real_chat_loaded.model, real_chat_loaded.tokenizer
    messages = [{"role": "user", "content": "Explain what a LoRA adapter is, in three sentences."}]
    prompt = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"])
    with real_chat_loaded.lock, torch.inference_mode():
        sequence = model.generate(torch.tensor([prompt]), max_new_tokens=48, do_sample=False)
        expected = model(sequence).logits[0, len(prompt) - 1:]
        decoder = FastDecoder(model)
        actual = full_logits(decoder, sequence[0].tolist())[len(prompt) - 1:]
    agreement = (actual.argmax(-1) == expected.argmax(-1)).float().mean()
    assert agreement >= 0.9, f"top-1 agreement with the NF4 model fell to {agreement:.2f}"
