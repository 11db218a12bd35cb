"""The OpenAI-compatible /v1 API of the running app, driven by the real ``openai`` client."""

import json

import httpx
import pytest

from tests.app_server import running_app

pytestmark = pytest.mark.real
openai = pytest.importorskip("openai")
MODEL = "smollm2-135m-instruct"
ASK = [{"role": "user", "content": "What is the capital of Japan?"}]
WEATHER = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "translate", "description": "Translate a text",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"},
                                                        "target": {"type": "string", "enum": ["de", "fr", "zh"]}},
                       "required": ["text", "target"]}}}]


def make_adapter(data_dir) -> None:
    """A LoRA adapter for the served model (random, so it surely changes replies), saved as training does."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.core.loading import load_causal_lm
    from finetune.adapters import AdapterStore, write_metadata

    torch.manual_seed(0)
    peft = get_peft_model(load_causal_lm(MODEL, quant="fp32").model,
                          LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", init_lora_weights=False))
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_A" in name:
                weight.mul_(4.0)
    with AdapterStore(data_dir / "adapters").staging("api-lora") as folder:
        peft.save_pretrained(folder)
        write_metadata(folder, {"task": "instruction", "base_model": MODEL, "kind": "causal-lm-lora",
                                "prompt_version": 1, "prompt_format": "chat", "hyperparameters": {},
                                "data_fingerprint": "none", "metrics": {"base": {}, "adapter": {}}})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("api-data")
    make_adapter(data_dir)
    with running_app(env={"ASSISTANT_DATA_DIR": str(data_dir)}) as url:
        yield url


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server + "v1", api_key="unused", max_retries=0)


def test_models_lists_the_served_model_and_each_adapter(client):
    listed = client.models.list().data
    assert [m.id for m in listed][:2] == [MODEL, "api-lora"]  # the loaded model first, its adapters after it
    assert "qwen2.5-coder-0.5b-instruct" in [m.id for m in listed] and listed[0].loaded


def test_streamed_text_equals_the_plain_greedy_reply_and_usage_counts(client):
    plain = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=24)
    assert "Tokyo" in plain.choices[0].message.content and plain.choices[0].finish_reason == "stop"
    assert plain.usage.prompt_tokens > 10 and plain.usage.completion_tokens > 3
    chunks = list(client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=24, stream=True))
    pieces = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert len([p for p in pieces if p]) > 2 and "".join(pieces) == plain.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_max_tokens_stop_and_seed(client):
    short = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens <= 4
    cut = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=24, stop=["Tokyo"])
    assert cut.choices[0].message.content.rstrip().endswith("is") and "Tokyo" not in cut.choices[0].message.content
    story = [{"role": "user", "content": "Write one sentence about a cat."}]
    a, b = (client.chat.completions.create(model=MODEL, messages=story, temperature=1.0, seed=11, max_tokens=20)
            for _ in range(2))
    assert a.choices[0].message.content == b.choices[0].message.content


def test_the_model_id_picks_the_adapter(client):
    base = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=16)
    tuned = client.chat.completions.create(model="api-lora", messages=ASK, temperature=0, max_tokens=16)
    again = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=16)
    assert tuned.choices[0].message.content != base.choices[0].message.content
    assert again.choices[0].message.content == base.choices[0].message.content


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "translate"}}])
def test_tool_calls_are_valid_json_for_their_schema(client, choice):
    asked = [{"role": "user", "content": "Translate 'good morning' into German, please."}]
    response = client.chat.completions.create(model=MODEL, messages=asked, tools=WEATHER, tool_choice=choice,
                                              temperature=0)
    call = response.choices[0].message.tool_calls[0]
    assert response.choices[0].finish_reason == "tool_calls"
    arguments = json.loads(call.function.arguments)
    if choice == "required":
        assert call.function.name in ("get_weather", "translate")
    else:
        assert call.function.name == "translate"
    required = {"get_weather": {"city"}, "translate": {"text", "target"}}[call.function.name]
    assert required <= set(arguments) and all(isinstance(arguments[k], str) for k in required)
    if call.function.name == "translate":
        assert arguments["target"] in ("de", "fr", "zh")


def test_response_format_json_schema_and_json_object(client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
              "required": ["city", "country"]}
    response = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=200,
                                              response_format={"type": "json_schema",
                                                               "json_schema": {"name": "answer", "schema": schema}})
    value = json.loads(response.choices[0].message.content)
    assert set(value) >= {"city", "country"}
    free = client.chat.completions.create(model=MODEL, messages=ASK, temperature=0, max_tokens=400,
                                          response_format={"type": "json_object"})
    assert isinstance(json.loads(free.choices[0].message.content), dict)


def test_completions_and_embeddings(client):
    text = client.completions.create(model=MODEL, prompt="The capital of France is", max_tokens=6, temperature=0)
    assert "Paris" in text.choices[0].text
    vectors = client.embeddings.create(model="minilm-l6-v2", input=[
        "How do I fine-tune a language model?", "Steps for fine-tuning a pretrained model", "The weather is sunny"]).data
    assert len(vectors) == 3 and len(vectors[0].embedding) == 384
    dot = lambda a, b: sum(x * y for x, y in zip(a.embedding, b.embedding))  # noqa: E731 (unit vectors)
    assert dot(vectors[0], vectors[1]) > dot(vectors[0], vectors[2])


def test_errors_are_openai_style(client, server):
    with pytest.raises(openai.NotFoundError, match="does not exist here"):
        client.chat.completions.create(model="no-such-model", messages=ASK)
    with pytest.raises(openai.BadRequestError, match="Your message is too long"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "word " * 6000}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=MODEL, messages=[])
    raw = httpx.post(server + "v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert raw.status_code == 400 and raw.json()["error"]["message"] == "The request body is not valid JSON."
    surrogate = httpx.post(server + "v1/chat/completions", headers={"content-type": "application/json"},
                           content=json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "\ud800"}]}))
    assert surrogate.status_code == 400 and "not valid Unicode" in surrogate.json()["error"]["message"]
    assert client.models.list().data  # the server is fine


def test_api_keys_are_required_when_set(tmp_path):
    with running_app(env={"ASSISTANT_DATA_DIR": str(tmp_path), "ASSISTANT_API_KEYS": "k1,k2"}) as url:
        with pytest.raises(openai.AuthenticationError, match="API key"):
            openai.OpenAI(base_url=url + "v1", api_key="wrong", max_retries=0).models.list()
        assert httpx.get(url + "v1/models").status_code == 401
        assert httpx.get(url + "v1/models", headers={"authorization": "bearer k1"}).status_code == 200  # any case
        good = openai.OpenAI(base_url=url + "v1", api_key="k2", max_retries=0)
        assert [m.id for m in good.models.list().data if m.loaded] == [MODEL]
