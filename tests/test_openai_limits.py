"""Hostile ``/v1`` requests on the tiny model, over real HTTP: each one gets a clear OpenAI-style 4xx naming what
to change (never a 500, never a hang), and the server keeps answering.

    pytest tests/test_openai_limits.py -q
"""

from __future__ import annotations

import json

import httpx
import pytest

from assistant.core.engines.json_schema_limits import (MAX_ALTERNATIVES, MAX_DEPTH, MAX_ENUM_VALUES,
                                                       MAX_PROPERTIES, MAX_REPEAT, MAX_SCHEMA_CHARS, check_schema)
from assistant.core.errors import InputError
from assistant.openai_requests import MAX_BODY_BYTES, MAX_BODY_DEPTH, MAX_TOOLS
from tests.openai_server import serving_api

openai = pytest.importorskip("openai")
MODEL = "served-model"
HI = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}


def schema_format(schema) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}


def nested(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.fixture(scope="module")
def api(tiny_loaded):
    with serving_api(tiny_loaded, MODEL, api_keys=["k1"]) as url:
        yield url


def post(api: str, body, path: str = "/chat/completions", headers: dict | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(api + path, content=content, timeout=120,
                      headers={"content-type": "application/json", "authorization": "Bearer k1", **(headers or {})})


def _deep_schema(levels: int) -> dict:
    """Objects nested ``levels`` deep (each level is two levels of the document: the object, its properties)."""
    schema = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


def chat_body(**fields) -> dict:
    return {"model": MODEL, "messages": HI, "max_tokens": 4, "temperature": 0, **fields}


HOSTILE = {
    "100,000 [": (b"[" * 100_000, None, f"more than {MAX_BODY_DEPTH} deep"),
    "content 900 lists deep": (chat_body(messages=[{"role": "user", "content": nested(900, "hi")}]), None, "deep"),
    "content 40 lists deep": (chat_body(messages=[{"role": "user", "content": nested(40, "hi")}]), "messages",
                              "content[0] must be a"),
    "image part": (chat_body(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
                   "messages", "text only"),
    "tool_choice function as a string": (chat_body(tools=[TOOL], tool_choice={"type": "function", "function": "w"}),
                                         "tool_choice", "'tool_choice' must be"),
    "tool_choice unknown": (chat_body(tools=[TOOL], tool_choice="always"), "tool_choice", "'tool_choice' must be"),
    "tool_choice without tools": (chat_body(tool_choice="required"), "tool_choice", "no 'tools'"),
    "tool parameters a list": (chat_body(tools=[{**TOOL, "function": {"name": "w", "parameters": [1]}}]), "tools",
                               "JSON schema object"),
    "too many tools": (chat_body(tools=[{**TOOL, "function": {"name": f"t{i}"}} for i in range(MAX_TOOLS + 1)]),
                       "tools", f"at most {MAX_TOOLS}"),
    "n=9": (chat_body(n=9), "n", "at most 8 choices"),
    "n=true": (chat_body(n=True), "n", "'n' must be a whole number from 1"),
    "n=0": (chat_body(n=0), "n", "'n' must be a whole number from 1"),
    "n=Infinity": (chat_body(n=float("inf")), "n", "'n' must be a whole number from 1"),
    "n=NaN": (chat_body(n=float("nan")), "n", "'n' must be a whole number from 1"),
    "n=2 streamed": (chat_body(n=2, stream=True), "n", "non-streamed /v1/chat/completions only"),
    "max_tokens 0": (chat_body(max_tokens=0), "max_tokens", "'max_tokens' must be a whole number from 1"),
    "max_completion_tokens -5": (chat_body(max_completion_tokens=-5), "max_completion_tokens", "from 1"),
    "stream yes": (chat_body(stream="yes"), "stream", "'stream' must be true or false"),
    "stream 1": (chat_body(stream=1), "stream", "'stream' must be true or false"),
    "temperature of 400 digits": (chat_body(temperature=int("9" * 400)), None, "'temperature' must be"),
    "json_schema a string": (chat_body(response_format={"type": "json_schema", "json_schema": "x"}),
                             "response_format", "'response_format' must be"),
    "minLength 1e9": (chat_body(response_format=schema_format({"type": "string", "minLength": 1_000_000_000})),
                      "response_format", f"from 0 to {MAX_REPEAT}"),
    "maxItems huge": (chat_body(response_format=schema_format({"type": "array", "maxItems": 10**12})),
                      "response_format", f"from 0 to {MAX_REPEAT}"),
    "minLength NaN": (b'{"model": "served-model", "messages": [{"role": "user", "content": "hi"}], "response_format": '
                      b'{"type": "json_schema", "json_schema": {"schema": {"type": "string", "minLength": NaN}}}}',
                      "response_format", "NaN"),
    "20,000 enum values": (chat_body(response_format=schema_format({"enum": [f"v{i}" for i in range(20_000)]})),
                           "response_format", "characters long"),
    "300 enum values": (chat_body(response_format=schema_format({"enum": list(range(300))})), "response_format",
                        f"at most {MAX_ENUM_VALUES}"),
    "pattern quantifier": (chat_body(response_format=schema_format({"type": "string", "pattern": "^a{99999}$"})),
                           "response_format", f"at most {MAX_REPEAT} repetitions"),
    "too many properties": (chat_body(response_format=schema_format(
        {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(MAX_PROPERTIES + 1)}})),
        "response_format", f"at most {MAX_PROPERTIES} per object"),
    "schema too deep": (chat_body(response_format=schema_format(_deep_schema(MAX_DEPTH // 2 + 1))),
                        "response_format", f"more than {MAX_DEPTH} levels"),
    "tool schema 1e9": (chat_body(tools=[{**TOOL, "function": {"name": "w", "parameters": {
        "type": "object", "properties": {"a": {"type": "string", "maxLength": 10**9}}}}}], tool_choice="required"),
        "tools", f"from 0 to {MAX_REPEAT}"),
    "body over the limit": (b'{"model": "x", "pad": "' + b"a" * (MAX_BODY_BYTES + 1) + b'"}', None, "larger than"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_chat_request_gets_a_clear_4xx(api, case):
    body, param, phrase = HOSTILE[case]
    response = post(api, body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert phrase in error["message"] and error["param"] == param, error


@pytest.mark.parametrize("fields, param", [({"stream": "yes"}, "stream"), ({"n": 2}, "n"),
                                           ({"max_tokens": 0}, "max_tokens")])
def test_hostile_completion_request_gets_a_clear_400(api, fields, param):
    response = post(api, {"model": MODEL, "prompt": "Hello", "max_tokens": 4, **fields}, path="/completions")
    assert response.status_code == 400 and response.json()["error"]["param"] == param, response.text


def test_the_bearer_scheme_is_case_insensitive(api):
    ask = chat_body()
    for scheme in ("Bearer", "bearer", "BEARER"):
        assert post(api, ask, headers={"authorization": f"{scheme} k1"}).status_code == 200, scheme
    assert post(api, ask, headers={"authorization": "bearer wrong"}).status_code == 401
    assert post(api, ask, headers={"authorization": "Basic k1"}).status_code == 401
    assert httpx.get(api + "/models", headers={"authorization": "bearer k1"}).status_code == 200


def test_the_openai_client_reports_the_limits(api):
    client = openai.OpenAI(base_url=api, api_key="k1", max_retries=0)
    with pytest.raises(openai.BadRequestError, match="at most 8 choices"):
        client.chat.completions.create(model=MODEL, messages=HI, n=9, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="'max_tokens' must be"):
        client.chat.completions.create(model=MODEL, messages=HI, max_tokens=0)
    with pytest.raises(openai.BadRequestError, match=f"from 0 to {MAX_REPEAT}"):
        client.chat.completions.create(model=MODEL, messages=HI, max_tokens=4,
                                       response_format=schema_format({"type": "string", "minLength": 10**9}))
    reply = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=4, temperature=0)
    assert reply.choices[0].finish_reason in ("stop", "length") and len(reply.choices) == 1


def test_a_long_history_is_trimmed_quickly_over_http(api, tiny_loaded):
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} about adapters"}
               for i in range(1999)]
    response = post(api, chat_body(messages=history))
    assert response.status_code == 200
    assert 100 < response.json()["usage"]["prompt_tokens"] <= tiny_loaded.context_window - 4


def test_the_server_still_answers_after_all_of_them(api):
    response = post(api, chat_body())
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["role"] == "assistant"


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"pattern": {"type": "string"}, "minLength": {"type": "integer"},
                                      "enum": {"type": "string", "enum": ["a", "b"]}}, "required": ["pattern"]},
    {"type": "string", "minLength": MAX_REPEAT, "maxLength": MAX_REPEAT, "pattern": "^[a-z]{1,1000}$"},
    {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(MAX_PROPERTIES)}},
    {"enum": list(range(MAX_ENUM_VALUES))},
    {"anyOf": [{"const": i} for i in range(MAX_ALTERNATIVES)]},
    _deep_schema(MAX_DEPTH // 2 - 1),
])
def test_schemas_within_the_limits_pass(schema):
    check_schema(schema)


@pytest.mark.parametrize("schema, phrase", [
    ({"type": "string", "minLength": -1}, "from 0 to"), ({"type": "string", "maxLength": 2.5}, "from 0 to"),
    ({"type": "string", "maxLength": True}, "from 0 to"), ({"type": "string", "pattern": 5}, "regular expression"),
    ({"type": "string", "pattern": "^a{2000,}$"}, "repeats 2000"),
    ({"anyOf": [{"const": i} for i in range(MAX_ALTERNATIVES + 1)]}, f"more than {MAX_ALTERNATIVES}"),
    ({"$defs": {"x": {"type": "string", "maxLength": 5000}}, "$ref": "#/$defs/x"}, ".$defs.x.maxLength"),
    ({"description": "x" * MAX_SCHEMA_CHARS}, f"at most {MAX_SCHEMA_CHARS}"),
    ({"default": nested(MAX_DEPTH, 1)}, "levels deep"),
    ([], "must be an object"),
])
def test_schemas_over_a_limit_name_it(schema, phrase):
    with pytest.raises(InputError) as raised:
        check_schema(schema)
    assert phrase in str(raised.value), str(raised.value)


@pytest.mark.parametrize("schema", [
    {"default": {"type": "string", "minLength": 10**9}, "$ref": "#/default"},
    {"properties": {"type": "string", "minLength": 10**9}, "$ref": "#/properties"},
    {"enum": [{"type": "string", "maxLength": 10**9}], "$ref": "#/enum"},
])
def test_a_ref_may_not_lead_around_the_checks(schema):
    with pytest.raises(InputError, match="must point to a schema"):
        check_schema(schema)


def test_a_ref_to_a_definition_is_checked_and_allowed():
    check_schema({"$defs": {"name": {"type": "string", "maxLength": 40}},
                  "type": "object", "properties": {"a": {"$ref": "#/$defs/name"}, "b": {"$ref": "#/properties/a"}}})


@pytest.mark.parametrize("pattern", ["^a{1_000_000}$", "^a{+5000}$", "^a{ 2000 , }$", "^a{1,99999}$"])
def test_pattern_quantifiers_are_read_as_the_converter_reads_them(pattern):
    with pytest.raises(InputError, match=f"at most {MAX_REPEAT} repetitions"):
        check_schema({"type": "string", "pattern": pattern})


def test_the_grammar_keeps_the_schemas_property_order():
    from assistant.core.engines.json_grammar import schema_grammar

    grammar = schema_grammar({"type": "object", "properties": {"zebra": {"type": "string"}, "apple": {"type": "string"}},
                              "required": ["zebra", "apple"]})._grammar
    root = next(line for line in grammar.splitlines() if line.startswith("root ::="))
    assert root.index("zebra") < root.index("apple"), root


def test_n_choices_are_generated_together_each_its_own_reply(api):
    client = openai.OpenAI(base_url=api, api_key="k1", max_retries=0)
    greedy = client.chat.completions.create(model=MODEL, messages=HI, n=3, max_tokens=6, temperature=0)
    alone = client.chat.completions.create(model=MODEL, messages=HI, max_tokens=6, temperature=0)
    assert [c.index for c in greedy.choices] == [0, 1, 2]
    assert [c.message.content for c in greedy.choices] == [alone.choices[0].message.content] * 3
    assert greedy.usage.prompt_tokens == alone.usage.prompt_tokens  # the prompt counts once
    assert greedy.usage.completion_tokens == 3 * alone.usage.completion_tokens
    sampled = client.chat.completions.create(model=MODEL, messages=HI, n=4, max_tokens=12, temperature=1.5, seed=7)
    again = client.chat.completions.create(model=MODEL, messages=HI, n=4, max_tokens=12, temperature=1.5, seed=7)
    texts = [c.message.content for c in sampled.choices]
    assert len(set(texts)) > 1  # choice i samples with seed + i: the choices differ
    assert texts == [c.message.content for c in again.choices]  # and the request is reproducible
