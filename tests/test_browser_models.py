"""The model picker above the tabs switches the running app's model while an API client streams a reply from the
old one: the stream finishes on the model it named, the page then chats with the new model, the header and the
chat line say which is loaded. Two tiny f32 GGUF models in a models folder.

    pytest tests/test_browser_models.py -q
"""

import shutil

import pytest

from tests.app_server import app_in_process
from tests.tiny_models import build_tiny_gguf

pytestmark = pytest.mark.browser
openai = pytest.importorskip("openai")
pytest.importorskip("llama_cpp")
ASK = [{"role": "user", "content": "The quick brown fox"}]


def test_picking_a_model_switches_the_page_while_an_api_stream_finishes_on_the_old_one(tmp_path, browser):
    models = tmp_path / "models"
    models.mkdir()
    for name, seed in (("a", 0), ("b", 1)):
        shutil.copy(build_tiny_gguf(tmp_path / name, seed=seed)[0], models / f"{name}.gguf")
    args = ("--model", str(models / "a.gguf"), "--models-dir", str(models), "--data-dir", str(tmp_path / "data"))
    with app_in_process(*args) as (url, _):
        client = openai.OpenAI(base_url=url + "v1", api_key="unused", max_retries=0, timeout=60)
        settings = {"messages": ASK, "temperature": 0, "max_tokens": 24}
        expected = client.chat.completions.create(model="a.gguf", **settings).choices[0].message.content
        stream = iter(client.chat.completions.create(model="a.gguf", stream=True, **settings))
        pieces = [next(stream)]

        page = browser.new_page()
        page.goto(url)
        page.locator("#model-picker input").click()
        page.get_by_role("option", name="b.gguf").click()
        page.locator("#loaded-models").get_by_text("b (the UI's model)").wait_for(timeout=30000)
        assert "Model b" in page.locator("#model-info").inner_text()

        pieces += list(stream)  # began on a before the switch: ends on a
        assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == expected
        listed = client.models.list().data
        assert [m.id for m in listed if m.loaded] == ["b.gguf"]  # --max-loaded-models 1: a was unloaded

        page.locator("#chat-input textarea").fill("hello")
        page.locator("#chat-send").click()
        page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']").last.wait_for(timeout=30000)
        page.locator("#model-picker input").click()
        assert "● b.gguf" in page.get_by_role("option", name="b.gguf").inner_text()
        page.close()
