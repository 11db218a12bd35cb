"""A ``/v1`` client that goes away stops its generation, and JSON grammars are bounded and built before the model
is needed: on the embedded SmolLM2 GGUF (llama.cpp), served in this process so the tests can watch the engine's
batch (``scheduler.busy()``: requests running or waiting) and hold its context lock (no batch step can run).

A reply constrained to ten 1000-character strings cannot end early (the grammar forbids the end token), so a
generation that ignored a disconnect would stay in the batch for thousands of tokens, far beyond the bounds here.

    pytest tests/test_openai_disconnect.py -q -m real
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.openai_server import serving_api

pytestmark = pytest.mark.real
openai = pytest.importorskip("openai")
MODEL = "smollm2-135m-instruct"
STORY = [{"role": "user", "content": "Write ten long paragraphs about cats."}]
HI = [{"role": "user", "content": "Hi"}]
LONG = {"type": "json_schema", "json_schema": {"name": "paragraphs", "schema": {
    "type": "array", "items": {"type": "string", "minLength": 1000}, "minItems": 10, "maxItems": 10}}}
RELEASED_WITHIN = 10.0  # seconds after a disconnect; ignoring it would decode ~2,500 tokens more


@pytest.fixture(scope="module")
def loaded():
    from assistant.core.loading import load_served_model

    model = load_served_model(MODEL)
    if model.engine_name != "llama.cpp":
        pytest.skip("these checks need the llama.cpp engine (grammars)")
    return model


@pytest.fixture(scope="module")
def api(loaded):
    with serving_api(loaded, MODEL) as url:
        yield url


@pytest.fixture(scope="module")
def client(api):
    return openai.OpenAI(base_url=api, api_key="unused", max_retries=0, timeout=300)


def long_stream(client):
    return client.chat.completions.create(model=MODEL, messages=STORY, max_tokens=3500, temperature=0, stream=True,
                                          response_format=LONG)


def model_busy(loaded) -> bool:
    return loaded.engine.scheduler.busy() > 0


def assert_released(loaded) -> None:
    deadline = time.monotonic() + RELEASED_WITHIN
    while model_busy(loaded) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not model_busy(loaded), "the abandoned generation is still in the batch"


def test_closing_a_stream_frees_the_model_for_the_next_request(client, loaded):
    stream = long_stream(client)
    pieces = 0
    for chunk in stream:
        pieces += bool(chunk.choices and chunk.choices[0].delta.content)
        if pieces == 5:
            break
    assert model_busy(loaded)  # generating
    stream.close()
    assert_released(loaded)
    reply = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2, temperature=0)
    assert reply.choices[0].message.content is not None


def test_streams_closed_while_waiting_for_the_model_never_run(client, loaded):
    loaded.engine.lock.acquire()  # the model is busy: the three streams queue behind it
    try:
        streams = [long_stream(client) for _ in range(3)]
        for stream in streams:
            first = next(iter(stream))  # the role chunk comes before the model is needed
            assert first.choices[0].delta.role == "assistant"
            stream.close()
        time.sleep(1.0)  # the server sees the three disconnects
    finally:
        loaded.engine.lock.release()
    assert_released(loaded)
    started = time.monotonic()
    client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2, temperature=0)
    assert time.monotonic() - started < RELEASED_WITHIN


def test_a_plain_request_stops_when_its_client_gives_up(api, loaded):
    body = {"model": MODEL, "messages": STORY, "max_tokens": 3500, "temperature": 0, "response_format": LONG}
    gave_up = threading.Event()

    def impatient_client():
        try:
            httpx.post(api + "/chat/completions", json=body, timeout=httpx.Timeout(5.0, connect=5.0))
        except httpx.TimeoutException:
            gave_up.set()

    caller = threading.Thread(target=impatient_client)
    caller.start()
    caller.join(timeout=60)
    assert gave_up.is_set(), "the long request should still be running when the client gives up"
    assert_released(loaded)


def test_a_valid_schema_is_converted_while_another_request_holds_the_model(api, loaded):
    from assistant.core.engines.json_grammar import _grammar_for

    schema = {"type": "object", "properties": {"colour": {"type": "string", "enum": ["red", "green", "blue"]}},
              "required": ["colour"]}
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Pick a colour."}], "max_tokens": 40,
            "temperature": 0, "response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    before = _grammar_for.cache_info().misses
    replies = []
    loaded.engine.lock.acquire()
    try:
        caller = threading.Thread(target=lambda: replies.append(httpx.post(api + "/chat/completions", json=body,
                                                                           timeout=120)))
        caller.start()
        deadline = time.monotonic() + 30
        while _grammar_for.cache_info().misses == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _grammar_for.cache_info().misses > before, "the grammar waits for the model lock"
        assert not replies
    finally:
        loaded.engine.lock.release()
    caller.join(timeout=120)
    assert replies[0].status_code == 200 and replies[0].json()["choices"][0]["message"]["content"].startswith("{")


def test_over_limit_schemas_are_refused_while_the_model_is_busy(client, loaded):
    loaded.engine.lock.acquire()
    try:
        started = time.monotonic()
        for schema in ({"type": "string", "minLength": 1_000_000_000}, {"enum": list(range(20_000))}):
            with pytest.raises(openai.BadRequestError, match="this server allows"):
                client.chat.completions.create(model=MODEL, messages=HI, max_tokens=4, response_format={
                    "type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
        assert time.monotonic() - started < 10
    finally:
        loaded.engine.lock.release()


def test_a_grammar_llama_cpp_cannot_parse_is_a_400_not_a_crash(client):
    unparsable = {"type": "string", "pattern": "^\\q$"}  # converted as is; GBNF has no \q escape
    with pytest.raises(openai.BadRequestError, match="could not parse the grammar"):
        client.chat.completions.create(model=MODEL, messages=HI, max_tokens=4, response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": unparsable}})
    assert client.chat.completions.create(model=MODEL, messages=HI, max_tokens=2, temperature=0).choices
