"""The fast CPU decoder: exactness against transformers, KV cache, stopping, sampling, and the engine.

The tiny Llama is loaded in NF4 (as the app serves its default model). Both weight formats are
checked: int8 of the NF4 model's own weights and int4 of the float checkpoint in its folder.
Each is compared with an fp32 transformers copy whose linear weights are replaced by the
decoder's quantized values, so only bf16 activation rounding separates the two.

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
from assistant.fast_decode import FastDecoder, eos_token_ids, process_logits
from assistant.loading import load_causal_lm
from assistant.quantized_weights import INT4_KERNEL_MAX_ROWS, Int4Linear, dequantized_weight

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


@pytest.fixture(scope="module", params=["int8", "int4"])
def decoder(request, tiny_nf4, sharp_llm_dir):
    """int8 of the NF4 model's weights, or int4 of the float checkpoint in the model's folder."""
    built = FastDecoder(tiny_nf4.model, sharp_llm_dir if request.param == "int4" else None)
    assert built.weight_format == request.param
    return built


@pytest.fixture(scope="module")
def reference(sharp_llm_dir, decoder):
    """fp32 transformers Llama computing with exactly the decoder's (dequantized) weights."""
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


def test_quantized_weights_stay_within_half_a_step_of_their_source(tiny_nf4, sharp_llm_dir, decoder):
    if decoder.weight_format == "int8":
        source = dequantized_weight(tiny_nf4.model.model.layers[1].mlp.down_proj)
        half_step = source.abs().amax(1, keepdim=True) / 254
    else:
        source = AutoModelForCausalLM.from_pretrained(sharp_llm_dir).model.layers[1].mlp.down_proj.weight.detach()
        groups = source.reshape(source.shape[0], -1, 32)
        half_step = ((groups.amax(-1) - groups.amin(-1)) / 30).repeat_interleave(32, dim=1)
    error = (decoder.layers[1].down.dequantized() - source).abs()
    assert (error <= half_step * 1.05 + source.abs() * 2**-8).all()  # + bf16 rounding of scales and zeros


def test_the_format_follows_what_the_model_folder_holds(tiny_nf4, tmp_path):
    assert FastDecoder(tiny_nf4.model, tiny_nf4.location).weight_format == "int4"
    assert FastDecoder(tiny_nf4.model, tmp_path).weight_format == "int8"  # no checkpoint there
    assert FastDecoder(tiny_nf4.model).weight_format == "int8"


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


@pytest.mark.parametrize("fast_decode, checkpoint, weight_format", [("served", False, "int8"),
                                                                     ("checkpoint", True, "int4")])
def test_engine_serves_the_nf4_model_with_the_fast_decoder(tiny_nf4, fast_decode, checkpoint, weight_format):
    engine = ChatEngine(tiny_nf4, fast_decode=fast_decode)
    assert engine.uses_fast_decode() and not engine.uses_fast_decode("some-adapter")
    assert not ChatEngine(tiny_nf4, fast_decode="off").uses_fast_decode()
    chunks = list(engine.stream("hello there", [], "", GREEDY))
    assert len(chunks) >= 3 and all(later.startswith(earlier) for earlier, later in zip(chunks, chunks[1:]))
    assert engine.fast_decoder.weight_format == weight_format
    ids, _ = engine.prompt_ids(engine.conversation("hello there", [], ""), GREEDY.max_new_tokens)
    decoder = FastDecoder(tiny_nf4.model, tiny_nf4.location if checkpoint else None)
    tokens = decoder.generate(ids, GREEDY.max_new_tokens, eos_token_ids(tiny_nf4.model))
    assert chunks[-1] == engine.tokenizer.decode(list(tokens), skip_special_tokens=True)


def test_auto_copies_four_bits_for_nf4_and_eight_for_int8(tiny_nf4, sharp_llm_dir):
    engine = ChatEngine(tiny_nf4)  # fast_decode="auto"
    engine.prepare()
    assert engine.fast_decoder.weight_format == "int4"
    int8_engine = ChatEngine(load_causal_lm(str(sharp_llm_dir), quant="int8"))
    int8_engine.prepare()
    assert int8_engine.fast_decoder.weight_format == "int8"


def test_int4_prompt_path_unpacks_exactly_the_weights_the_kernel_uses():
    torch.manual_seed(0)
    layer = Int4Linear(torch.randn(192, 96) * 0.05)
    assert torch.equal(layer.unpacked().float(), layer.dequantized())
    few, many = torch.randn(INT4_KERNEL_MAX_ROWS, 96).bfloat16(), torch.randn(INT4_KERNEL_MAX_ROWS + 9, 96).bfloat16()
    assert_close_to_bf16(layer(many).float(), many.float() @ layer.dequantized().T)  # GEMM on unpacked weights
    assert_close_to_bf16(layer(few).float(), few.float() @ layer.dequantized().T)  # the int4 GEMV kernel


def test_shapes_the_int4_packing_cannot_take_stay_int8():
    assert Int4Linear.supports((128, 64)) and not Int4Linear.supports((96, 64)) and not Int4Linear.supports((128, 48))
    with pytest.raises(ValueError, match="int4 packing"):
        Int4Linear(torch.randn(96, 64))


def test_an_unknown_weight_choice_is_refused(tiny_nf4):
    with pytest.raises(ValueError, match="fast_decode"):
        ChatEngine(tiny_nf4, fast_decode="int3")


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


def test_llm_int8_models_decode_fast_too(sharp_llm_dir):
    loaded = load_causal_lm(str(sharp_llm_dir), quant="int8")
    original = AutoModelForCausalLM.from_pretrained(sharp_llm_dir).model.layers[0].self_attn.q_proj.weight.detach()
    recovered = dequantized_weight(loaded.model.model.layers[0].self_attn.q_proj)
    half_step = original.abs().amax(1, keepdim=True) / 254  # plus 127 x the fp16 rounding of the row scale
    assert ((recovered - original).abs() <= half_step * (1 + 254 / 2048)).all()
    assert ChatEngine(loaded).uses_fast_decode() and len(list(FastDecoder(loaded.model).generate(PROMPT, 8))) == 8


def test_fp32_models_keep_transformers_generate(tiny_loaded):
    assert not ChatEngine(tiny_loaded).uses_fast_decode()


def test_decoder_reads_base_weights_under_a_lora_wrapper(sharp_llm_dir, decoder):
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(load_causal_lm(str(sharp_llm_dir), quant="nf4").model,
                             LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"]))
    rebuilt = FastDecoder(wrapped, sharp_llm_dir if decoder.weight_format == "int4" else None)
    assert torch.equal(rebuilt.layers[1].qkv.weight, decoder.layers[1].qkv.weight)
    assert torch.equal(full_logits(rebuilt, PROMPT), full_logits(decoder, PROMPT))


@pytest.mark.real
def test_real_model_answers_paris_in_english_and_streams_chinese(real_chat_loaded):
    engine = ChatEngine(real_chat_loaded)
    assert engine.uses_fast_decode()
    settings = GenerationSettings(temperature=0, max_new_tokens=32)
    english = list(engine.stream("What is the capital of France?", [], "", settings))
    assert len(english) > 2 and "Paris" in english[-1]
    # A 135M model's Chinese is weak: this prompt gets a Chinese reply from the checkpoint, int4,
    # NF4 and int8 alike (``你好！请用中文介绍一下你自己。`` gets emoji from the fp32 checkpoint).
    chinese = list(engine.stream("中国的首都是哪里？", [], "", settings))
    assert all(later.startswith(earlier) for earlier, later in zip(chinese, chinese[1:]))
    # Streamed pieces never split a character; only a reply cut by the token limit may end mid-character.
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese[-1]) and "\ufffd" not in chinese[-1].rstrip("\ufffd")


@pytest.mark.real
def test_real_model_fast_logits_stay_close_to_what_they_copy(real_chat_loaded):
    model, tokenizer = real_chat_loaded.model, real_chat_loaded.tokenizer
    original = AutoModelForCausalLM.from_pretrained(real_chat_loaded.location, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "Explain what a LoRA adapter is, in three sentences."}]
    prompt = list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                                return_dict=True)["input_ids"])
    with real_chat_loaded.lock, torch.inference_mode():
        sequence = original.generate(torch.tensor([prompt]), max_new_tokens=64, do_sample=False)
        checkpoint = original(sequence).logits[0, len(prompt) - 1:]
        served = model(sequence).logits[0, len(prompt) - 1:]
        int8 = full_logits(FastDecoder(model), sequence[0].tolist())[len(prompt) - 1:]
        int4 = full_logits(FastDecoder(model, real_chat_loaded.location), sequence[0].tolist())[len(prompt) - 1:]

    def agreement(logits, reference):
        return (logits.argmax(-1) == reference.argmax(-1)).float().mean().item()

    assert agreement(int8, served) >= 0.95  # the default copy answers like the NF4 model
    # The checkpoint holds the GGUF's Q4_1 values, which int4 groups of 32 reproduce; NF4 does not.
    assert agreement(int4, checkpoint) >= 0.97 and agreement(int4, checkpoint) >= agreement(served, checkpoint)
