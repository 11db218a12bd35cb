"""The model list and switching models without a restart, through ``/v1`` with the ``openai`` client, on two tiny
f32 GGUF models (different random weights) in a models folder, loaded by the app's own builder.

    pytest tests/test_model_switching.py -q
"""

from __future__ import annotations

import shutil
import threading

import pytest

from assistant.core.model_catalog import ModelCatalog
from assistant.model_pool import ModelPool, model_builder
from assistant.settings import AppSettings
from finetune.adapters import AdapterStore
from tests.openai_server import serving_pool
from tests.tiny_models import build_tiny_gguf

pytest.importorskip("llama_cpp")
openai = pytest.importorskip("openai")
ASK = [{"role": "user", "content": "The quick brown fox"}]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("switching")
    models = root / "models"
    models.mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        shutil.copy(build_tiny_gguf(root / name, seed=seed)[0], models / f"{name}.gguf")
    whole = (models / "a.gguf").read_bytes()
    (models / "cut.gguf").write_bytes(whole[:len(whole) // 2])  # an interrupted copy
    (models / "notes.gguf").write_text("not a model")
    return root


def settings_for(root, **changes) -> AppSettings:
    return AppSettings(model=str(root / "models" / "a.gguf"), models_dir=str(root / "models"),
                       cache_dir=root / "cache", data_dir=root / "data", **changes)


def pool_for(root, **changes) -> ModelPool:
    """The pool as app.py builds it (same builder, same settings fields)."""
    settings = settings_for(root, **changes)
    return ModelPool(settings.catalog(), model_builder(settings, AdapterStore(root / "data" / "adapters")),
                     settings.max_loaded_models, settings.max_model_memory_mb * 1024 * 1024, settings.context)


@pytest.fixture(scope="module")
def pool(folders):
    return pool_for(folders)


@pytest.fixture(scope="module")
def client(pool):
    with serving_pool(pool) as url:
        yield openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)


def reply(client, model: str, max_tokens: int = 16) -> str:
    answer = client.chat.completions.create(model=model, messages=ASK, temperature=0, max_tokens=max_tokens)
    assert answer.model == model
    return answer.choices[0].message.content


@pytest.fixture(scope="module")
def expected(client, pool):
    """Each model's greedy reply, asked alone (one model in memory at a time)."""
    replies = {name: reply(client, name) for name in ("a.gguf", "b.gguf")}
    assert replies["a.gguf"] != replies["b.gguf"], "the two test models must answer differently"
    return replies


def test_the_list_has_every_model_with_the_damaged_ones_unusable(client, expected, folders):
    listed = {m.id: m for m in client.models.list().data}
    assert {"a.gguf", "b.gguf", "cut.gguf", "notes.gguf", "smollm2-135m-instruct"} <= set(listed)
    assert next(iter(listed)) == "b.gguf" and listed["b.gguf"].loaded and not listed["a.gguf"].loaded  # loaded first
    tiny = listed["a.gguf"]
    assert (tiny.format, tiny.quantization, tiny.usable, tiny.source) == ("GGUF", "F32", True, "models folder")
    assert tiny.size_bytes == (folders / "models" / "a.gguf").stat().st_size
    assert not listed["cut.gguf"].usable and "cut short" in listed["cut.gguf"].problem
    assert not listed["notes.gguf"].usable and "magic" in listed["notes.gguf"].problem
    assert listed["smollm2-135m-instruct"].license.lower() == "apache-2.0"


def test_requests_naming_models_switch_them_and_each_reply_comes_from_its_model(client, pool, expected):
    names = ["a.gguf", "b.gguf"] * 3
    got, failures = {}, []

    def ask(index: int, name: str) -> None:
        try:
            got[index] = reply(client, name)
        except Exception as exc:  # noqa: BLE001  (any failure fails the test below)
            failures.append(f"{name}: {exc!r}")

    threads = [threading.Thread(target=ask, args=(i, name)) for i, name in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures
    assert [got[i] for i in range(len(names))] == [expected[name] for name in names]
    assert len(pool.loaded_ids()) == 1  # --max-loaded-models 1: the other one was unloaded each time


def test_a_stream_on_the_old_model_finishes_while_another_model_is_loaded(client, pool, expected):
    reply(client, "a.gguf")
    stream = client.chat.completions.create(model="a.gguf", messages=ASK, temperature=0, max_tokens=16, stream=True)
    chunks = iter(stream)
    first = next(chunks)
    assert reply(client, "b.gguf") == expected["b.gguf"]  # loads b, unloads a: a's stream still runs on its model
    assert pool.loaded_ids() == ["b.gguf"]
    text = "".join((c.choices[0].delta.content or "") for c in [first, *chunks] if c.choices)
    assert text == expected["a.gguf"]


def test_bad_names_are_refused_with_what_to_do(client, folders):
    cases = {"nope": (404, "does not exist here"), "../a.gguf": (400, "outside the models folder"),
             "/etc/passwd": (400, "outside the models folder"), str(folders / "a" / "tiny-llama-64-f32.gguf"):
             (400, "outside the models folder"), "owner/repo": (400, "--allow-hub-models"),
             "cut.gguf": (400, "cut short"), "": (400, "'model' is required")}
    for name, (status, message) in cases.items():
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model=name, messages=ASK, max_tokens=2)
        assert caught.value.status_code == status and message in str(caught.value), name


def test_a_model_that_would_not_fit_is_refused_before_loading(folders):
    pool = pool_for(folders, max_model_memory_mb=100)
    pool.get("a.gguf")
    with serving_pool(pool) as url:
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=60)
        with pytest.raises(openai.BadRequestError) as caught:
            client.chat.completions.create(model="smollm2-135m-instruct", messages=ASK, max_tokens=2)
    assert "needs about" in str(caught.value) and "--max-model-memory-mb" in str(caught.value)
    assert pool.loaded_ids() == ["a.gguf"]  # nothing was unloaded for it, nothing half-loaded stays


def test_the_catalog_lists_hub_ids_only_as_allowed_and_says_why_they_are_off(folders, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    catalog = ModelCatalog(folders / "models", folders / "cache", hub_ids=("owner/repo/model.gguf",))
    hub = next(entry for entry in catalog.entries() if entry.source == "hub")
    assert not hub.usable and "HF_HUB_OFFLINE" in hub.problem
    with pytest.raises(Exception, match="HF_HUB_OFFLINE"):
        catalog.find("owner/repo/model.gguf")
    with pytest.raises(Exception, match="not a hub id"):
        ModelCatalog(folders / "models", hub_ids=("../x",))


def test_the_ui_handle_follows_a_switch_but_never_inside_a_held_lock(pool, expected):
    from assistant.active_model import ActiveModel

    pool.switch_default("a.gguf")
    active = ActiveModel(pool)
    with active.lock:
        engine_a = active.engine
        pool.switch_default("b.gguf")  # another session picks b meanwhile (a is unloaded from the pool)
        assert active.engine is engine_a and active.reference.endswith("a.gguf")
    assert active.engine is pool.get("b.gguf").loaded.engine and active.reference.endswith("b.gguf")
    assert active.name == "b"


def test_a_model_that_fails_to_load_leaves_the_loaded_one_serving(client, pool, folders, expected):
    whole = (folders / "models" / "a.gguf").read_bytes()
    assert whole.count(b"llama") >= 1
    (folders / "models" / "alien.gguf").write_bytes(whole.replace(b"\x05\x00\x00\x00\x00\x00\x00\x00llama",
                                                                  b"\x05\x00\x00\x00\x00\x00\x00\x00alien", 1))
    reply(client, "b.gguf")
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="alien.gguf", messages=ASK, max_tokens=2)
    assert caught.value.status_code == 500 and "alien" in str(caught.value)
    assert pool.loaded_ids() == ["b.gguf"] and reply(client, "b.gguf") == expected["b.gguf"]


def test_the_adapter_picker_lists_the_adapters_of_the_model_switched_to(pool, folders, tmp_path):
    from assistant.active_model import ActiveModel
    from assistant.served_adapters import ServedAdapters
    from tests.adapter_files import publish

    store = AdapterStore(tmp_path / "adapters")
    publish(store, "for-b", base_model=str(folders / "models" / "b.gguf"))
    publish(store, "for-smollm")  # trained on smollm2-135m-instruct
    adapters = ServedAdapters(ActiveModel(pool), store, "unused")
    pool.switch_default("a.gguf")
    assert adapters.adapter_names() == []
    pool.switch_default("b.gguf")
    assert adapters.adapter_names() == ["for-b"]
