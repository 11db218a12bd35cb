"""The llama.cpp engine on a tiny Llama written to GGUF by the project's own writer.

The reference is always the transformers engine in fp32 on the same weights: an f32 GGUF must give
its greedy tokens and its log-probabilities, with and without a LoRA adapter, within a stated
tolerance. llama.cpp's f16 KV cache moves this model's logits by up to 0.0028, so two tokens the
reference has within 0.02 of each other may come out either way (tests/cross_engine.py): the engine's
tokens are checked teacher-forced against the reference's logits, and every other step must agree.
Within one engine (stream vs reply, adapter blocks) replies are still compared exactly.
"""

import threading
from dataclasses import replace

import pytest

from assistant.chat import Chat, GenerationSettings
from assistant.core.errors import ModelLoadError, UserError
from assistant.core.generation import encode_messages, generate, generate_batch, score_continuations
from assistant.core.loading import load_causal_lm, load_llama_cpp, load_served_model
from assistant.served_adapters import ServedAdapters
from finetune.adapters import AdapterStore
from finetune.config import FinetuneConfig
from tests.cross_engine import decisive_disagreements, engine_greedy_ids, follows_oracle, oracle_logits, penalised
from tests.recipe_runs import run_new
from tests.tiny_models import build_tiny_gguf

pytest.importorskip("llama_cpp")

GREEDY = GenerationSettings(temperature=0, max_new_tokens=20, repetition_penalty=1.0)
PROMPTS = ["The quick brown fox", "大模型通过预训练", "Question: what is LoRA?"]


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory):
    return build_tiny_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="module")
def served(tiny_gguf, tmp_path_factory):
    return load_llama_cpp(tiny_gguf[0], "tiny-llama", tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def reference(tiny_gguf):
    return load_causal_lm(str(tiny_gguf[1]), quant="fp32")


@pytest.fixture(scope="module")
def adapters(tiny_gguf, tmp_path_factory):
    """A LoRA adapter really trained (a few steps) on the GGUF base, in an adapter store."""
    data_dir = tmp_path_factory.mktemp("data")
    run_new(FinetuneConfig(task="classification", base=str(tiny_gguf[0]), output="sentiment", max_steps=3,
                       batch_size=8, eval_limit=4, learning_rate=5e-2, data="finetune/samples/sentiment_en.csv",
                       data_dir=str(data_dir)))
    return AdapterStore(data_dir / "adapters")


def test_served_model_says_it_runs_on_llama_cpp(served):
    assert served.engine_name == "llama.cpp" and served.model is None
    assert "llama.cpp" in served.describe() and "F32 GGUF" in served.describe()
    assert served.context_window == 256


def greedy_against_reference(served, reference_model, messages, settings=GREEDY):
    """The served engine's greedy token ids for chat ``messages``, checked against the reference's
    teacher-forced logits (penalised as transformers does when ``settings`` has a repetition penalty):
    (ids, how many steps were decisive)."""
    prompt = encode_messages(served.tokenizer, messages)
    ids = engine_greedy_ids(served, prompt, settings, served.tokenizer.eos_token_id)
    oracle = oracle_logits(reference_model, prompt, ids)
    if settings.repetition_penalty != 1.0:
        oracle = penalised(oracle, prompt, ids, settings.repetition_penalty)
    return ids, follows_oracle(oracle, ids)


def test_greedy_replies_follow_transformers_fp32(served, reference):
    conversations = [[{"role": "user", "content": p}] for p in PROMPTS]
    replies = generate_batch(served, conversations, 24)
    decisive = 0
    for messages, reply in zip(conversations, replies):
        ids, checked = greedy_against_reference(served, reference.model, messages, replace(GREEDY, max_new_tokens=24))
        assert reply == served.tokenizer.decode(ids, skip_special_tokens=True)  # the batch path: the same tokens
        decisive += checked
    assert decisive >= len(PROMPTS) * 24 // 3, "too few steps away from a near-tie for the check to mean much"
    assert len(set(replies)) == len(replies)  # the prompts really lead to different replies


def test_scores_equal_transformers_fp32(served, reference):
    tokenizer = reference.tokenizer
    prompt = encode_messages(tokenizer, [{"role": "user", "content": "Review: loved it"}])
    candidates = [tokenizer.encode(text, add_special_tokens=False) + [tokenizer.eos_token_id]
                  for text in ("positive", "negative", "neutral sports")]
    # abs=1e-3 on sums of 4-7 log-probabilities: the f16 KV cache moves them by up to 2.4e-4 (measured)
    assert score_continuations(served, prompt, candidates) == pytest.approx(
        score_continuations(reference, prompt, candidates), abs=1e-3)
    # the cached prefix is reused across calls and survives a chat turn in between
    Chat(served).reply("hello", settings=GREEDY)
    assert score_continuations(served, prompt, candidates) == pytest.approx(
        score_continuations(reference, prompt, candidates), abs=1e-3)


def test_stream_grows_and_follows_an_independent_greedy_reference(served, reference):
    chat = Chat(served)
    chunks = list(chat.stream("The quick brown fox", settings=GREEDY))
    assert len(chunks) > 3 and all(a != b and b.startswith(a) for a, b in zip(chunks, chunks[1:]))
    ids, _ = greedy_against_reference(served, reference.model, chat.conversation("The quick brown fox", [], ""))
    assert chunks[-1] == served.tokenizer.decode(ids, skip_special_tokens=True)


def test_stop_event_ends_the_stream_early(served):
    chat = Chat(served)
    stop = threading.Event()
    seen = []
    for text in chat.stream("The quick brown fox", settings=GenerationSettings(temperature=0, max_new_tokens=200),
                            stop_event=stop):
        seen.append(text)
        if len(seen) == 3:
            stop.set()
    assert 3 <= len(seen) <= 4


def test_seeded_sampling_repeats_and_unseeded_varies(served):
    chat = Chat(served)
    seeded = GenerationSettings(temperature=1.0, top_p=1.0, max_new_tokens=16, seed=7)
    assert chat.reply("Question: what is LoRA?", settings=seeded) == chat.reply("Question: what is LoRA?",
                                                                                   settings=seeded)
    free = GenerationSettings(temperature=1.5, top_p=1.0, max_new_tokens=16)
    assert len({chat.reply("Question: what is LoRA?", settings=free) for _ in range(4)}) > 1


def test_adapter_reply_follows_peft_and_base_returns_per_request(served, reference, adapters, tiny_gguf):
    from peft import PeftModel

    served_adapters = ServedAdapters(served, adapters, str(tiny_gguf[0]))
    assert served_adapters.adapter_names() == ["sentiment"]
    fast = Chat(served, served_adapters)
    peft = PeftModel.from_pretrained(load_causal_lm(str(tiny_gguf[0]), quant="fp32").model,
                                     str(adapters.get("sentiment").path)).eval()

    base = fast.reply("great film, loved it", settings=GREEDY)
    tuned = fast.reply("great film, loved it", settings=GREEDY, adapter="sentiment")
    assert tuned != base
    messages = fast.conversation("great film, loved it", [], "")
    with served_adapters.using("sentiment"):
        ids, _ = greedy_against_reference(served, peft, messages)
    assert tuned == served.tokenizer.decode(ids, skip_special_tokens=True)
    with peft.disable_adapter():  # control: the base alone must disagree at decisive steps
        assert decisive_disagreements(oracle_logits(peft, encode_messages(served.tokenizer, messages), ids), ids)
    assert (adapters.get("sentiment").path / "adapter_model.gguf").is_file()  # converted once, kept beside it
    # two sessions interleaved, each picking its own adapter per request
    for _ in range(2):
        assert fast.reply("great film, loved it", settings=GREEDY, adapter=None) == base
        assert fast.reply("great film, loved it", settings=GREEDY, adapter="sentiment") == tuned


def test_adapter_for_another_base_is_a_clear_error(adapters, tmp_path):
    other_gguf, _ = build_tiny_gguf(tmp_path, hidden=32)
    other = load_llama_cpp(other_gguf, "other", tmp_path / "cache")
    with pytest.raises(UserError, match="was trained on .*do not fit the served model"):
        with other.lock, other.engine.adapter(adapters.get("sentiment")):
            pass


def test_damaged_gguf_is_an_error_naming_the_file(tmp_path):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="broken.gguf"):
        load_served_model(str(broken))


def test_engine_choice(tiny_gguf, tiny_llm_dir):
    gguf, hf = tiny_gguf
    assert load_served_model(str(gguf)).engine_name == "llama.cpp"
    assert load_served_model(str(gguf), quant="fp32", engine="transformers").engine_name == "transformers"
    plain = load_served_model(str(tiny_llm_dir), quant="fp32", engine="llama.cpp")
    assert plain.engine_name == "transformers" and "needs a GGUF model" in plain.notices[0]
    assert load_served_model(str(tiny_llm_dir), quant="fp32").engine_name == "transformers"


def test_missing_llama_cpp_falls_back_to_transformers_with_a_notice(tiny_gguf):
    import subprocess
    import sys

    from tests.app_server import REPO_ROOT

    code = ("import sys; sys.modules['llama_cpp'] = None\n"  # what an uninstalled package looks like to import
            "from assistant.core.loading import load_served_model\n"
            "loaded = load_served_model(sys.argv[1], quant='fp32')\n"
            "print(loaded.engine_name); print(loaded.notices[0])")
    out = subprocess.run([sys.executable, "-c", code, str(tiny_gguf[0])], cwd=REPO_ROOT, capture_output=True,
                         text=True, check=True, timeout=300).stdout.splitlines()
    assert out[0] == "transformers"
    assert "llama-cpp-python is not usable" in out[1] and "serving with transformers instead" in out[1]


def test_probe_reports_a_file_llama_cpp_cannot_run(tmp_path):
    from assistant.core.engines.llama_cpp_probe import probe_failure

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 64)
    reason = probe_failure(broken, tmp_path / "cache")
    assert reason and "broken.gguf" in reason
    assert not list((tmp_path / "cache").rglob("*.ok"))  # a failure is never remembered as a success


@pytest.mark.parametrize("engine_name", ["llama.cpp", "transformers"])
def test_work_outside_an_adapter_block_runs_on_the_base(engine_name, tiny_gguf, adapters, served):
    """A request that picks no adapter must never inherit the adapter of the request before it."""
    loaded = served if engine_name == "llama.cpp" else load_causal_lm(str(tiny_gguf[0]), quant="fp32")
    served_adapters = ServedAdapters(loaded, adapters, str(tiny_gguf[0]))
    prompt = encode_messages(loaded.tokenizer, [{"role": "user", "content": "great film, loved it"}])
    candidates = [[5, 6], [7]]
    base = score_continuations(loaded, prompt, candidates)
    with served_adapters.using("sentiment"):
        tuned = score_continuations(loaded, prompt, candidates)
    assert tuned != pytest.approx(base, abs=1e-4)
    assert score_continuations(loaded, prompt, candidates) == pytest.approx(base, abs=1e-6)
    ids, _ = greedy_against_reference(loaded, load_causal_lm(str(tiny_gguf[1]), quant="fp32").model,
                                      [{"role": "user", "content": "great film"}], replace(GREEDY, max_new_tokens=8))
    assert generate(loaded, [{"role": "user", "content": "great film"}], 8) == loaded.tokenizer.decode(
        ids, skip_special_tokens=True)


def test_repetition_penalty_means_what_it_means_in_transformers(served, reference):
    """Penalised greedy decoding (over prompt and reply) gives transformers' tokens on the same weights:
    checked against the reference's logits after transformers' own RepetitionPenaltyLogitsProcessor."""
    with_penalty = GenerationSettings(temperature=0, max_new_tokens=24, repetition_penalty=1.3)
    for prompt in PROMPTS:
        messages = Chat(served).conversation(prompt, [], "")
        ids, _ = greedy_against_reference(served, reference.model, messages, with_penalty)
        assert Chat(served).reply(prompt, settings=with_penalty) == served.tokenizer.decode(
            ids, skip_special_tokens=True)
    assert Chat(served).reply(PROMPTS[0], settings=with_penalty) != Chat(served).reply(
        PROMPTS[0], settings=GREEDY)
