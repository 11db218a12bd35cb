"""The default chat model (Qwen2.5-Coder-0.5B-Instruct on llama.cpp, as the app serves it) does what the
small SmolLM2 could not: answer in Chinese, translate English into Chinese, classify Chinese sentiment.
One model load for the module; greedy, short replies, so the tier stays a few seconds per test."""

import pytest

from assistant.core.language import is_chinese

pytestmark = pytest.mark.real


@pytest.fixture(scope="module")
def default_chat():
    from assistant.chat import Chat
    from assistant.core.loading import load_served_model
    from assistant.core.model_sources import DEFAULT_CHAT_MODEL

    loaded = load_served_model(DEFAULT_CHAT_MODEL)
    yield loaded, Chat(loaded)
    loaded.engine.close()


def test_it_answers_a_chinese_question_in_chinese(default_chat):
    from assistant.chat import GenerationSettings

    _, chat = default_chat
    reply = chat.reply("什么是微调？请用一句话回答。", settings=GenerationSettings(temperature=0, max_new_tokens=48))
    assert is_chinese(reply) and "微调" in reply and "什么是微调" not in reply[:6]  # an answer, not an echo


def test_it_translates_english_into_chinese(default_chat):
    from assistant.tasks import translation

    loaded, _ = default_chat
    out = translation.translate_lines(loaded, ["The weather is very nice today."], "en", "zh")
    assert is_chinese(out[0]) and "天气" in out[0]


def test_it_classifies_chinese_sentiment(default_chat):
    from assistant.tasks import classification

    loaded, _ = default_chat
    good = classification.classify(loaded, "这家酒店的服务非常好，房间干净，下次还会再来。", "正面, 负面")
    bad = classification.classify(loaded, "房间又脏又吵，前台态度很差，再也不来了。", "正面, 负面")
    assert good["label"] == "正面" and bad["label"] == "负面"
