"""Switching between the two embedded chat models (Qwen2.5-Coder-0.5B, the default, and SmolLM2-135M) without a
restart, as the app builds them: through ``/v1`` with the ``openai`` client while another session chats, and on
the UI's handle while one of its replies is still streaming. One model in memory at a time (the CPU default), so
every switch unloads one and loads the other.

    pytest tests/test_embedded_model_switching.py -q
"""

from __future__ import annotations

import threading

import pytest

from assistant.core.model_sources import DEFAULT_CHAT_MODEL
from assistant.model_pool import ModelPool, model_builder
from assistant.settings import AppSettings
from finetune.adapters import AdapterStore
from tests.openai_server import serving_pool

pytestmark = pytest.mark.real
pytest.importorskip("llama_cpp")
openai = pytest.importorskip("openai")
SMALL = "smollm2-135m-instruct"
ASK = [{"role": "user", "content": "Name three colours."}]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    root = tmp_path_factory.mktemp("embedded-switching")
    # parallel 1: replies to one model never share a batch here, so each is exactly its model's greedy reply alone
    # (batched decoding is tested on its own in test_llama_cpp_batching.py).
    settings = AppSettings(model=SMALL, models_dir=str(root / "models"), data_dir=root / "data", parallel=1)
    pool = ModelPool(settings.catalog(), model_builder(settings, AdapterStore(root / "data" / "adapters")),
                     settings.max_loaded_models, settings.max_model_memory_mb * 1024 * 1024, settings.context)
    pool.switch_default(SMALL)
    yield pool
    for model_id in pool.loaded_ids():
        pool.unload(model_id)


@pytest.fixture(scope="module")
def client(pool):
    with serving_pool(pool) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=300)


def reply(client, model: str) -> str:
    answer = client.chat.completions.create(model=model, messages=ASK, temperature=0, max_tokens=12)
    assert answer.model == model
    return answer.choices[0].message.content


def test_requests_naming_either_embedded_model_get_that_models_reply_while_another_session_chats(client, pool):
    expected = {name: reply(client, name) for name in (SMALL, DEFAULT_CHAT_MODEL)}
    assert expected[SMALL] != expected[DEFAULT_CHAT_MODEL]
    got, failures = [], []

    def other_session() -> None:
        for _ in range(3):
            try:
                got.append((SMALL, reply(client, SMALL)))
            except Exception as exc:  # noqa: BLE001  (any failure fails the test below)
                failures.append(repr(exc))

    chatting = threading.Thread(target=other_session)
    chatting.start()
    for name in (DEFAULT_CHAT_MODEL, SMALL, DEFAULT_CHAT_MODEL):
        got.append((name, reply(client, name)))
    chatting.join(timeout=600)
    assert not failures
    assert len(got) == 6 and all(text == expected[name] for name, text in got)
    assert len(pool.loaded_ids()) == 1


def test_a_ui_reply_in_flight_finishes_on_its_model_when_the_picker_switches(pool):
    from assistant.active_model import ActiveModel
    from assistant.chat import Chat, GenerationSettings

    settings = GenerationSettings(temperature=0, max_new_tokens=24)
    pool.switch_default(SMALL)
    chat = Chat(ActiveModel(pool))
    alone = chat.reply("Name three colours.", settings=settings)
    stream = chat.stream("Name three colours.", settings=settings)
    texts = [next(stream)]
    pool.switch_default(DEFAULT_CHAT_MODEL)  # another session picks Qwen: SmolLM2 leaves the pool mid-reply
    texts += list(stream)
    assert texts[-1] == alone  # SmolLM2's tokens, read with SmolLM2's tokenizer to the end
    assert chat.reply("用一句话说：什么是微调？", settings=settings) != alone  # the next request runs on Qwen
    assert pool.loaded_ids() == [DEFAULT_CHAT_MODEL]
