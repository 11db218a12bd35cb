"""User errors speak the page's language: Chinese for a browser that asks for it, English otherwise.

The messages live in one table (``assistant.core.user_messages.MESSAGES``), raised by key; handlers turn them
into ``gr.Error`` with ``@shows_user_errors``.

    pytest tests/test_user_errors.py -q
"""

import inspect
import pickle
import string
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from assistant.core.errors import InputError, UserError
from assistant.core.user_messages import LANGUAGES, MESSAGES, message_text, translated
from assistant.ui import user_errors
from assistant.ui.user_errors import FALLBACK, shown, shows_user_errors

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "assistant" / "core" / "user_messages.py"
# parameters the English names that the Chinese leaves out (English-only detail), key by key
ENGLISH_ONLY = {"feedback.too_few_kto": {"seen"}, "feedback.too_few_dpo": {"seen"}, "feedback.too_few_sft": {"seen"}}


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def source_files() -> list[Path]:
    files = [*(ROOT / "assistant").rglob("*.py"), *(ROOT / "finetune").rglob("*.py"), ROOT / "app.py"]
    return [path for path in files if path != TABLE]


def test_every_key_has_english_and_chinese_with_the_same_placeholders():
    assert len(MESSAGES) >= 40
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGUAGES), key
        assert all(entry[language].strip() for language in LANGUAGES), key
        english, chinese = placeholders(entry["en"]), placeholders(entry["zh"])
        assert chinese <= english, f"{key}: the Chinese names {chinese - english} the English lacks"
        assert english - chinese == ENGLISH_ONLY.get(key, set()), f"{key}: {english - chinese} missing in Chinese"


def test_every_key_is_raised_somewhere_and_no_keyed_message_is_raised_as_plain_text():
    code = {path: path.read_text(encoding="utf-8") for path in source_files()}
    for key, entry in MESSAGES.items():
        assert any(f'"{key}"' in text for text in code.values()), f"dead key: {key}"
        if not placeholders(entry["en"]):
            copies = [path.name for path, text in code.items() if entry["en"] in text]
            assert not copies, f"{copies} raise {key!r} as plain text: raise it by its key"


def test_a_keyed_error_reads_as_its_english_text_and_keeps_its_key():
    error = InputError.keyed("classify.too_many_labels", count=60, limit=50)
    assert str(error) == "Too many labels: 60; at most 50 are allowed. Merge or drop some."
    assert (error.key, error.params) == ("classify.too_many_labels", {"count": 60, "limit": 50})
    assert translated(error, "zh") == "标签太多：60 个，最多 50 个。请合并或删除一些。"
    copy = pickle.loads(pickle.dumps(error))  # training errors cross process boundaries
    assert (str(copy), copy.key, copy.params) == (str(error), error.key, error.params)
    plain = UserError("Something nobody wrote a translation for.")
    assert (plain.key, plain.params, translated(plain, "zh")) == (None, {}, None)
    with pytest.raises(KeyError):
        InputError.keyed("no.such.key")


def raised(call) -> UserError:
    with pytest.raises(UserError) as info:
        call()
    return info.value


def test_errors_the_code_raises_have_the_same_chinese_as_before():
    """Raised by the real functions, so a message raised without its key fails here."""
    from assistant.feedback.dataset import plan_training
    from assistant.tasks import classification, ner, translation
    from assistant.ui.adapters_panel import delete_adapter
    from assistant.ui.finetune_forms import check_ready

    expected = [
        (lambda: classification.check_text(" "), "文本为空：请输入或粘贴要分类的文本。"),
        (lambda: ner.check_text(""), "文本为空：请输入或粘贴要识别实体的文本。"),
        (lambda: translation.check_text(""), "文本为空：请输入或粘贴要翻译的文本。"),
        (lambda: check_ready(None), "请先上传数据集或选择示例：现在还没有可训练的数据。"),
        (lambda: delete_adapter(None, None, False), "请先在列表中选择一个适配器。"),
        (lambda: delete_adapter(None, "try-sentiment", False), "请勾选确认框后再删除“try-sentiment”：删除无法撤销。"),
        (lambda: classification.parse_labels("good, bad, Good"), "标签“Good”重复（与“good”相同）：每个标签只写一次。"),
        (lambda: classification.parse_labels([f"l{i}" for i in range(60)]), "标签太多：60 个，最多 50 个。请合并或删除一些。"),
        (lambda: translation.check_text("x" * (translation.MAX_TEXT_CHARS + 1)), f"{translation.MAX_TEXT_CHARS + 1:,}"),
        (lambda: plan_training([], "kto"), "用反馈训练（KTO）至少需要 10 条样本，目前只有 0 条：请再评价 10 条。"),
    ]
    for call, chinese in expected:
        error = raised(call)
        assert error.key in MESSAGES, f"raised without a key: {error}"
        assert chinese in translated(error, "zh")
        assert str(error) == message_text(error.key, "en", **error.params)


def test_shown_is_english_unless_the_browser_asks_for_chinese(monkeypatch):
    error = InputError.keyed("finetune.no_job_to_stop")
    assert shown(error).message == "There is no job to stop."
    monkeypatch.setattr(user_errors, "page_is_chinese", lambda: True)
    message = shown(error).message
    assert message.startswith("没有可停止的训练任务") and "There is no job to stop." in message
    for other in ("A message without an entry.", InputError("A message without an entry.")):
        message = shown(other).message
        assert "A message without an entry." in message and FALLBACK in message


def test_the_decorator_shows_user_errors_of_a_plain_function(monkeypatch):
    @shows_user_errors
    def handler(problem: str | None, request: gr.Request = None) -> str:
        """Answers ok unless told which error to raise."""
        if problem == "user":
            raise InputError.keyed("finetune.no_job_to_stop")
        if problem == "bug":
            raise ValueError("a real fault keeps its type")
        return "ok"

    assert handler(None) == "ok"
    assert list(inspect.signature(handler).parameters) == ["problem", "request"]
    assert handler.__doc__ == "Answers ok unless told which error to raise."
    with pytest.raises(gr.Error) as info:
        handler("user")
    assert info.value.message == "There is no job to stop."
    with pytest.raises(ValueError):
        handler("bug")
    monkeypatch.setattr(user_errors, "page_is_chinese", lambda: True)
    with pytest.raises(gr.Error) as info:
        handler("user")
    assert info.value.message.startswith("没有可停止的训练任务")


def test_the_decorator_keeps_a_generator_streaming_and_shows_its_user_errors():
    cleaned = []

    @shows_user_errors
    def stream(count: int, fail: bool):
        try:
            for i in range(count):
                yield i
            if fail:
                raise InputError.keyed("chat.empty_message")
        finally:
            cleaned.append(count)

    assert inspect.isgeneratorfunction(stream)  # Gradio streams only generator functions
    assert list(stream(3, False)) == [0, 1, 2]
    seen = []
    with pytest.raises(gr.Error) as info:
        for value in stream(2, True):
            seen.append(value)
    assert seen == [0, 1] and info.value.message == "Type a message first: an empty message cannot be answered."
    stopped = stream(5, False)
    assert next(stopped) == 0
    stopped.close()  # a stopped stream closes the handler's generator too
    assert cleaned == [3, 2, 5]


def test_page_language_comes_from_the_request_header():
    from gradio.context import LocalContext

    token = LocalContext.request.set(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9,en;q=0.8"}))
    try:
        assert user_errors.page_is_chinese()
    finally:
        LocalContext.request.reset(token)
    token = LocalContext.request.set(SimpleNamespace(headers={"accept-language": "en-US,en;q=0.9"}))
    try:
        assert not user_errors.page_is_chinese()
    finally:
        LocalContext.request.reset(token)
    assert not user_errors.page_is_chinese()  # outside an event
