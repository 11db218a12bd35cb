"""A table of hostile values sent to every public API endpoint of the running app: each one gets a
clear message (never an empty error from a traceback), none reveals server paths, and the server
keeps answering. Bodies are written by hand (Gradio's HTTP API, ``/gradio_api/call/<name>``, and the
OpenAI-compatible ``/v1``) because a well-behaved client cannot send what an attacker can: NaN,
Infinity, a lone surrogate, 100,000 brackets. (``tests/test_openai_limits.py`` has the full ``/v1`` table.)"""

import json

import pytest

from tests.app_server import running_app

pytestmark = pytest.mark.real

PARAMETERS = {
    "/chat": ["message", "system_prompt", "temperature", "max_new_tokens", "adapter"],
    "/classify": ["text", "labels"],
    "/ner": ["text", "entity_types"],
    "/translate": ["text", "source_lang", "target_lang"],
    "/faq": ["question", "use_model"],
}
DEFAULTS = {"system_prompt": "", "adapter": ""}
GOOD = {
    "/chat": {"message": "Hi", "temperature": 0.0, "max_new_tokens": 4},
    "/classify": {"text": "Great film.", "labels": "positive, negative"},
    "/ner": {"text": "Angela Merkel visited Paris.", "entity_types": "PER, LOC"},
    "/translate": {"text": "Hello", "source_lang": "en", "target_lang": "de"},
    "/faq": {"question": "What is LoRA?", "use_model": False},
}
HOSTILE = [
    ("/chat", "message", None), ("/chat", "message", 42), ("/chat", "message", ["a", "b"]),
    ("/chat", "message", "\ud800"), ("/chat", "message", ""), ("/chat", "system_prompt", 7),
    ("/chat", "temperature", "hot"), ("/chat", "temperature", None), ("/chat", "temperature", float("nan")),
    ("/chat", "temperature", -1), ("/chat", "max_new_tokens", "abc"), ("/chat", "max_new_tokens", float("nan")),
    ("/chat", "max_new_tokens", float("inf")), ("/chat", "max_new_tokens", 0), ("/chat", "max_new_tokens", 10**9),
    ("/chat", "max_new_tokens", 2.5), ("/chat", "adapter", "no-such-adapter"), ("/chat", "adapter", "../../etc/passwd"),
    ("/chat", "adapter", 5),
    ("/classify", "text", None), ("/classify", "text", 3), ("/classify", "text", "\ud800"), ("/classify", "text", ""),
    ("/classify", "labels", None), ("/classify", "labels", "\ud800"), ("/classify", "labels", "only-one"),
    ("/ner", "text", None), ("/ner", "text", 1.5), ("/ner", "text", "\ud800"), ("/ner", "entity_types", 3),
    ("/translate", "text", None), ("/translate", "text", 9), ("/translate", "text", "\ud800"),
    ("/translate", "source_lang", 1), ("/translate", "source_lang", "xx"), ("/translate", "target_lang", None),
    ("/faq", "question", None), ("/faq", "question", 1), ("/faq", "question", "\ud800"),
    ("/faq", "use_model", "maybe"), ("/faq", "use_model", 3),
]


def _nested(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


_V1_CHAT = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
V1_HOSTILE = {
    "100000 brackets": b"[" * 100_000,
    "content 900 lists deep": {**_V1_CHAT, "messages": [{"role": "user", "content": _nested(900, "hi")}]},
    "tool_choice function a string": {**_V1_CHAT, "tools": [{"type": "function", "function": {"name": "w"}}],
                                      "tool_choice": {"type": "function", "function": "w"}},
    "n 9": {**_V1_CHAT, "n": 9}, "max_tokens 0": {**_V1_CHAT, "max_tokens": 0},
    "stream yes": {**_V1_CHAT, "stream": "yes"},
    "minLength 1e9": {**_V1_CHAT, "response_format": {"type": "json_schema", "json_schema": {
        "schema": {"type": "string", "minLength": 1_000_000_000}}}},
    "enum of 20000": {**_V1_CHAT, "response_format": {"type": "json_schema", "json_schema": {
        "schema": {"enum": list(range(20_000))}}}},
}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("hostile-data")
    with running_app(env={"ASSISTANT_DATA_DIR": str(data_dir)}) as url:
        yield url.rstrip("/"), str(data_dir)


def call(url: str, api: str, values: dict) -> tuple[str, object]:
    """(event, data) of one call: "complete" with the result, or "error" with the message."""
    import httpx

    args = [values.get(name, DEFAULTS.get(name)) for name in PARAMETERS[api]]
    body = json.dumps({"data": args}, ensure_ascii=True, allow_nan=True)  # NaN, Infinity, \ud800 as sent on the wire
    started = httpx.post(f"{url}/gradio_api/call{api}", content=body, headers={"content-type": "application/json"},
                         timeout=60)
    assert started.status_code == 200, started.text
    event_id = started.json()["event_id"]
    event, data = None, None
    with httpx.stream("GET", f"{url}/gradio_api/call{api}/{event_id}", timeout=300) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line.split(":", 1)[1])
                return event, data
    return event, data


@pytest.mark.parametrize(("api", "argument", "value"), HOSTILE, ids=[f"{a}-{n}-{v!r}"[:60] for a, n, v in HOSTILE])
def test_hostile_value_gets_a_clear_message(app, api, argument, value):
    url, data_dir = app
    event, data = call(url, api, {**GOOD[api], argument: value})
    assert event == "error", (event, data)
    message = data.get("error") if isinstance(data, dict) else data
    assert isinstance(message, str) and len(message) > 20 and "Traceback" not in message, data  # None: a traceback
    assert data_dir not in message and "/tmp/" not in message, message


@pytest.mark.parametrize("case", list(V1_HOSTILE))
def test_hostile_v1_body_gets_a_clear_4xx(app, case):
    import httpx

    url, data_dir = app
    body = V1_HOSTILE[case]
    response = httpx.post(f"{url}/v1/chat/completions", headers={"content-type": "application/json"}, timeout=60,
                          content=body if isinstance(body, bytes) else json.dumps(body).encode())
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])
    message = response.json()["error"]["message"]
    assert len(message) > 20 and "Traceback" not in message and data_dir not in message, message


def test_the_server_still_answers_after_all_of_them(app):
    import httpx

    url, _ = app
    assert call(url, "/classify", GOOD["/classify"])[0] == "complete"
    assert call(url, "/translate", {"text": "Hello", "source_lang": "en", "target_lang": "en"}) == ("complete", ["Hello"])
    answered = httpx.post(f"{url}/v1/chat/completions", json={**_V1_CHAT, "temperature": 0}, timeout=120)
    assert answered.status_code == 200, answered.text


def test_monitoring_is_off_unless_the_operator_turns_it_on(app):
    import httpx

    url, _ = app
    for path in ("/monitoring", "/monitoring/summary"):
        response = httpx.get(f"{url}{path}", timeout=30)
        assert response.status_code >= 400 and "call_count" not in response.text, (path, response.status_code)
