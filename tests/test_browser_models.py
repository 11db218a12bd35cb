"""The model picker above the tabs switches the running app between its two embedded models (SmolLM2-135M, then
Qwen2.5-Coder-0.5B, the default) while an API client, another session, streams a reply from the old one: the
stream finishes on the model it named, the page then chats with the new model, the header and the chat line say
which is loaded, and only the new one stays in memory.

    pytest tests/test_browser_models.py -q
"""

import pytest

from assistant.core.language import is_chinese
from assistant.core.model_sources import DEFAULT_CHAT_MODEL, SMALL_CHAT_MODEL
from tests.app_server import app_in_process

pytestmark = [pytest.mark.browser, pytest.mark.real]
openai = pytest.importorskip("openai")
pytest.importorskip("llama_cpp")
ASK = [{"role": "user", "content": "Name three colours."}]


def test_picking_the_other_embedded_model_switches_the_page_while_an_api_stream_finishes_on_the_old_one(
        tmp_path, browser):
    # --parallel 1: the stream and the solo reply it is compared with never share a batch
    args = ("--model", SMALL_CHAT_MODEL, "--parallel", "1", "--data-dir", str(tmp_path / "data"))
    with app_in_process(*args) as (url, services):
        client = openai.OpenAI(base_url=url + "v1", api_key="unused", max_retries=0, timeout=120)
        settings = {"messages": ASK, "temperature": 0, "max_tokens": 24}
        expected = client.chat.completions.create(model=SMALL_CHAT_MODEL, **settings).choices[0].message.content
        stream = iter(client.chat.completions.create(model=SMALL_CHAT_MODEL, stream=True, **settings))
        pieces = [next(stream)]

        page = browser.new_page()
        page.goto(url)
        page.locator("#model-picker input").click()
        page.get_by_role("option", name=DEFAULT_CHAT_MODEL).click()
        page.locator("#loaded-models").get_by_text("(the UI's model)").wait_for(timeout=120000)
        qwen = services.pool.get(DEFAULT_CHAT_MODEL).loaded.name
        page.locator("#loaded-models").get_by_text(qwen).wait_for(timeout=30000)
        page.locator("#model-info").get_by_text(qwen).wait_for(timeout=30000)

        pieces += list(stream)  # began on SmolLM2 before the switch: ends on SmolLM2
        assert "".join(c.choices[0].delta.content or "" for c in pieces if c.choices) == expected
        assert [m.id for m in client.models.list().data if m.loaded] == [DEFAULT_CHAT_MODEL]  # SmolLM2 unloaded

        page.locator("#chat-input textarea").fill("用一句话说：什么是微调？")
        page.locator("#chat-send").click()
        bot = page.locator("#chatbot .message.bot, #chatbot [data-testid='bot']").last
        bot.wait_for(timeout=120000)
        page.wait_for_function("() => { const b = [...document.querySelectorAll('#chatbot .message.bot, "
                               "#chatbot [data-testid=\"bot\"]')].pop(); return b && /[\\u4e00-\\u9fff]/.test(b.innerText) }",
                               timeout=120000)
        assert is_chinese(bot.inner_text())  # Qwen answers; SmolLM2 cannot write Chinese
        page.locator("#model-picker input").click()
        assert "● " in page.get_by_role("option", name=DEFAULT_CHAT_MODEL).inner_text()  # marked loaded
        page.close()
