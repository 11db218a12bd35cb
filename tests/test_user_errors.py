"""User errors speak the page's language: Chinese for a browser that asks for it, English otherwise.

    pytest tests/test_user_errors.py -q
"""

from types import SimpleNamespace

import pytest

from assistant.core.errors import InputError
from assistant.ui import errors_zh
from assistant.ui.errors_zh import FALLBACK, MESSAGES, to_chinese
from assistant.ui.user_errors import shown


def raised(call) -> str:
    with pytest.raises(InputError) as info:
        call()
    return str(info.value)


def test_messages_the_code_raises_have_chinese():
    """Raised by the real functions, so a reworded English message without a new pattern fails here."""
    from assistant.tasks import classification, ner, translation
    from assistant.ui.adapters_panel import delete_adapter
    from assistant.ui.finetune_forms import check_ready

    for call in (lambda: classification.check_text(" "), lambda: ner.check_text(""),
                 lambda: translation.check_text(""), lambda: check_ready(None),
                 lambda: delete_adapter(None, None, False), lambda: delete_adapter(None, "x", False),
                 lambda: classification.parse_labels("good, bad, Good"),
                 lambda: classification.parse_labels([f"l{i}" for i in range(60)])):
        message = raised(call)
        assert to_chinese(message), f"no Chinese for: {message}"


@pytest.mark.parametrize(("english", "chinese"), [
    ("The text is empty: type or paste the text to classify.", "文本为空"),
    ("Upload a dataset or pick a sample first: there is nothing to train on yet.", "请先上传数据集"),
    ("Tick the confirmation box to delete 'try-sentiment': deleting cannot be undone.", "“try-sentiment”"),
    ("Too many labels: 60; at most 50 are allowed. Merge or drop some.", "60 个，最多 50 个"),
    ("The text has 200,001 characters; the limit is 200,000. Split it up.", "200,001"),
])
def test_known_messages_have_chinese_that_says_what_to_do(english, chinese):
    assert chinese in to_chinese(english)


def test_every_pattern_compiles_and_an_unknown_message_has_none():
    assert len(MESSAGES) >= 30
    assert to_chinese("Something nobody wrote a translation for.") is None


def test_shown_is_english_unless_the_browser_asks_for_chinese(monkeypatch):
    assert shown(InputError("There is no job to stop.")).message == "There is no job to stop."
    monkeypatch.setattr(errors_zh, "page_is_chinese", lambda: True)
    monkeypatch.setattr("assistant.ui.user_errors.page_is_chinese", lambda: True)
    message = shown(InputError("There is no job to stop.")).message
    assert message.startswith("没有可停止的训练任务") and "There is no job to stop." in message
    other = shown("A message without an entry.").message
    assert "A message without an entry." in other and FALLBACK in other


def test_page_language_comes_from_the_request_header(monkeypatch):
    from gradio.context import LocalContext

    token = LocalContext.request.set(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"}))
    try:
        assert errors_zh.page_is_chinese()
    finally:
        LocalContext.request.reset(token)
    token = LocalContext.request.set(SimpleNamespace(headers={"accept-language": "en-US,en;q=0.9"}))
    try:
        assert not errors_zh.page_is_chinese()
    finally:
        LocalContext.request.reset(token)
    assert not errors_zh.page_is_chinese()  # outside an event
