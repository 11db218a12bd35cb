"""Continuous batching on the llama.cpp engine (``assistant.core.engines.llama_cpp_batch``), on the tiny f32 GGUF.

Replies decoded together must be the replies decoded one at a time, token for token: within one engine the same
kernels run (flash attention off, so where a sequence's cells lie does not change its sums), and batching bugs
(a wrong position, a token fed to another sequence, logits read from another row) change tokens at once.

    pytest tests/test_llama_cpp_batching.py
"""

import threading
import time

import pytest

from assistant.chat import GenerationSettings
from assistant.core.engines.llama_cpp_engine import LlamaCppEngine, default_parallel
from assistant.core.generation import encode_messages
from tests.tiny_models import build_tiny_gguf

pytest.importorskip("llama_cpp")

GREEDY = GenerationSettings(temperature=0, max_new_tokens=40, repetition_penalty=1.0)
TEXTS = ["The quick brown fox", "大模型通过预训练", "Question: what is LoRA?", "hello there, how are you"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from assistant.core.model_sources import gguf_tokenizer

    gguf, _ = build_tiny_gguf(tmp_path_factory.mktemp("gguf"))
    return gguf, gguf_tokenizer(gguf, tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="module")
def prompts(tiny):
    return [encode_messages(tiny[1], [{"role": "user", "content": text}]) for text in TEXTS]


@pytest.fixture(scope="module")
def solo(tiny, prompts):
    """Each prompt's greedy reply on a one-slot engine, one request after another."""
    engine = LlamaCppEngine(tiny[0], tiny[1], parallel=1)
    try:
        return [list(engine.generate(ids, GREEDY)) for ids in prompts]
    finally:
        engine.close()


@pytest.fixture
def engine(tiny):
    engine = LlamaCppEngine(tiny[0], tiny[1], parallel=4)
    yield engine
    engine.close()


def test_interleaved_batched_replies_equal_one_at_a_time(engine, prompts, solo):
    first = [engine.generate(ids, GREEDY) for ids in prompts[:2]]
    got = [[next(tokens) for _ in range(5)] for tokens in first]  # two replies under way ...
    later = [engine.generate(ids, GREEDY) for ids in prompts[2:]]  # ... when two more join the batch
    for reply, tokens in zip(got, first):
        reply.extend(tokens)
    got += [list(tokens) for tokens in later]
    assert got == solo
    assert engine.scheduler.peak >= 3  # they really ran together
    assert len({tuple(reply) for reply in solo}) == len(solo) and all(len(reply) > 10 for reply in solo)


def test_a_stopped_request_frees_its_slot_and_the_others_finish(tiny, prompts, solo):
    engine = LlamaCppEngine(tiny[0], tiny[1], parallel=2)
    try:
        long = engine.generate(prompts[0], GenerationSettings(temperature=0, max_new_tokens=150,
                                                              repetition_penalty=1.0))
        other = engine.generate(prompts[1], GREEDY)
        queued = engine.generate(prompts[2], GREEDY)  # no slot free until one of the first two ends
        assert [next(long) for _ in range(3)] == solo[0][:3]
        long.close()  # Stop / a closed tab: the sequence is freed at the next step
        assert list(queued) == solo[2] and list(other) == solo[1]
        assert engine.scheduler.busy() == 0
        # a stop event set from outside (a client disconnect) ends a reply the same way
        stop = threading.Event()
        tokens = engine.generate(prompts[3], GenerationSettings(temperature=0, max_new_tokens=150,
                                                                repetition_penalty=1.0), stop)
        next(tokens)
        stop.set()
        assert len(list(tokens)) <= 2 and engine.scheduler.busy() == 0
    finally:
        engine.close()


def test_more_requests_than_slots_queue_in_order(tiny, prompts, solo):
    engine = LlamaCppEngine(tiny[0], tiny[1], parallel=1)
    try:
        finished = []
        with engine.lock:  # the scheduler cannot start a step: all three wait
            streams = [engine.generate(ids, GREEDY) for ids in prompts[:3]]
            requests = list(engine.scheduler._waiting)
            assert [engine.scheduler.waiting_ahead(r) for r in requests] == [0, 1, 2]

        def read(index):
            assert list(streams[index]) == solo[index]
            finished.append(index)

        readers = [threading.Thread(target=read, args=(i,)) for i in (2, 1, 0)]
        for reader in readers:
            reader.start()
        for reader in readers:
            reader.join(timeout=60)
        assert finished == [0, 1, 2] and engine.scheduler.peak == 1
    finally:
        engine.close()


def test_next_turn_reads_only_the_new_message_even_after_other_users(engine, tiny, prompts):
    first = prompts[3]
    reply = list(engine.generate(first, GREEDY))
    for ids in prompts[:3]:  # other users in between
        list(engine.generate(ids, GREEDY))
    new_message = encode_messages(tiny[1], [{"role": "user", "content": "and then?"}])
    before = engine.sequences.reused
    list(engine.generate(first + reply + new_message, GREEDY))
    assert engine.sequences.reused - before >= len(first) + len(reply) - 1  # all but the reply's last token


def test_scoring_beside_a_running_reply_scores_as_alone(engine, prompts, solo):
    candidates = [[5, 6], [7], [9, 10, 11]]
    alone = engine.score(prompts[3], candidates)
    tokens = engine.generate(prompts[0], GREEDY)
    reply = [next(tokens) for _ in range(5)]
    assert engine.score(prompts[3], candidates) == pytest.approx(alone, abs=1e-6)
    assert reply + list(tokens) == solo[0]


def test_adapter_and_base_requests_together_each_get_their_own_reply(tiny, prompts, lora_info):
    engine = LlamaCppEngine(tiny[0], tiny[1], parallel=4)
    try:
        base_alone = list(engine.generate(prompts[0], GREEDY))
        tuned_alone = list(engine.generate(prompts[0], GREEDY, adapter=lora_info))
        other_alone = list(engine.generate(prompts[1], GREEDY, adapter=lora_info))
        assert tuned_alone != base_alone
        streams = [engine.generate(prompts[0], GREEDY, adapter=lora_info), engine.generate(prompts[0], GREEDY),
                   engine.generate(prompts[1], GREEDY, adapter=lora_info)]
        tuned, base, other = (list(tokens) for tokens in streams)
        assert (tuned, base, other) == (tuned_alone, base_alone, other_alone)
        assert engine.scheduler.peak >= 2
    finally:
        engine.close()


def test_default_parallel_follows_cores_and_context():
    assert default_parallel(4096, cores=2) == 4
    assert default_parallel(4096, cores=16) == 4  # 16,384 KV cells at most
    assert default_parallel(1024, cores=16) == 8
    assert default_parallel(32768, cores=2) == 1


@pytest.fixture(scope="module")
def lora_info(tiny, tmp_path_factory):
    """A LoRA adapter really trained (a few steps) on the tiny GGUF base."""
    from finetune.adapters import AdapterStore
    from finetune.config import FinetuneConfig
    from tests.recipe_runs import run_new

    data_dir = tmp_path_factory.mktemp("data")
    run_new(FinetuneConfig(task="classification", base=str(tiny[0]), output="sentiment", max_steps=3, batch_size=8,
                       eval_limit=4, learning_rate=5e-2, data="finetune/samples/sentiment_en.csv",
                       data_dir=str(data_dir)))
    return AdapterStore(data_dir / "adapters").get("sentiment")



def test_an_unloaded_engine_is_freed_when_its_last_reply_ends(tiny, prompts, solo):
    """What a model pool's unload relies on: nothing but running replies keeps an engine (and its memory)."""
    import gc
    import weakref

    engine = LlamaCppEngine(tiny[0], tiny[1], parallel=2)
    alive, loop = weakref.ref(engine), engine.scheduler._thread
    tokens = engine.generate(prompts[0], GREEDY)
    first = next(tokens)
    del engine  # the pool lets go while a reply runs
    gc.collect()
    assert alive() is not None, "the running reply keeps its engine"
    assert [first, *tokens] == solo[0]
    del tokens
    gc.collect()
    assert alive() is None, "nothing else holds the engine once its last reply ended"
    loop.join(timeout=30)
    assert not loop.is_alive(), "the decode loop ended with its engine"


def test_a_v1_stream_says_its_place_in_line_for_a_slot(tiny, tmp_path):
    import httpx

    from assistant.core.loading import load_served_model
    from tests.openai_server import serving_api

    loaded = load_served_model(str(tiny[0]), cache_dir=tmp_path, parallel=1)
    body = {"model": "tiny", "messages": [{"role": "user", "content": "The quick brown fox"}], "max_tokens": 8,
            "temperature": 0, "stream": True}
    try:
        with serving_api(loaded, "tiny") as url, httpx.Client(timeout=60) as client:
            with loaded.engine.lock:  # no decode step can run: every stream waits for the one slot
                places, streams = [], []
                for expected_busy in (1, 2, 3):
                    stream = client.stream("POST", url + "/chat/completions", json=body)
                    response = stream.__enter__()
                    streams.append((stream, response))
                    places.append(response.headers["x-queue-position"])
                    deadline = time.monotonic() + 30
                    while loaded.engine.scheduler.busy() < expected_busy and time.monotonic() < deadline:
                        time.sleep(0.01)  # the body's first read submits the request
            assert places == ["0", "1", "2"]
            for stream, response in streams:
                assert response.read().endswith(b"data: [DONE]\n\n")
                stream.__exit__(None, None, None)
    finally:
        loaded.engine.close()
