"""Chat on a tiny random Llama: templating, trimming, streaming, stopping."""

import threading

import pytest
import torch

from assistant.chat import Chat, GenerationSettings, message_text
from assistant.core.errors import InputError

GREEDY = GenerationSettings(temperature=0, max_new_tokens=24, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def chat(tiny_loaded):
    return Chat(tiny_loaded)


def test_conversation_keeps_system_prompt_and_prior_turns(chat):
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": [{"type": "text", "text": "yo"}]}]
    messages = chat.conversation("next", history, "Be brief.")
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "yo"},
        {"role": "user", "content": "next"},
    ]


def test_prompt_uses_the_models_own_chat_template(chat):
    ids, dropped = chat.prompt_ids(chat.conversation("hello", [], "sys"), 16)
    text = chat.tokenizer.decode(ids)
    assert text == "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    assert dropped == 0


def test_long_conversation_is_trimmed_oldest_first(chat):
    context = chat.loaded.context_window  # 256 for the tiny model
    history = []
    for i in range(40):
        history += [{"role": "user", "content": f"question {i} about fine-tuning"},
                    {"role": "assistant", "content": f"answer {i} about adapters"}]
    ids, dropped = chat.prompt_ids(chat.conversation("latest question", history, "sys"), 32)
    assert len(ids) <= context - 32 and dropped > 0
    text = chat.tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nsys") and "latest question" in text
    assert "question 0 " not in text and "answer 39" in text


def test_message_longer_than_the_context_is_a_clear_error(chat):
    with pytest.raises(InputError, match="Your message is too long"):
        chat.prompt_ids(chat.conversation("word " * 2000, [], ""), 32)


def test_max_new_tokens_beyond_context_is_a_clear_error(chat):
    with pytest.raises(InputError, match="leaves no room"):
        chat.prompt_ids(chat.conversation("hi", [], ""), 10_000)


def test_empty_message_is_rejected(chat):
    with pytest.raises(InputError, match="empty message"):
        list(chat.stream("   "))


def test_stream_arrives_in_growing_chunks_and_equals_greedy_generate(chat):
    chunks = list(chat.stream("hello there", [], "", GREEDY))
    assert len(chunks) >= 3
    assert all(later.startswith(earlier) for earlier, later in zip(chunks, chunks[1:]))

    ids, _ = chat.prompt_ids(chat.conversation("hello there", [], ""), GREEDY.max_new_tokens)
    prompt = torch.tensor([ids])
    with torch.inference_mode():
        out = chat.loaded.model.generate(prompt, attention_mask=torch.ones_like(prompt),
                                         pad_token_id=chat.tokenizer.pad_token_id, **GREEDY.generate_kwargs())
    expected = chat.tokenizer.decode(out[0, len(ids):], skip_special_tokens=True)
    assert chunks[-1] == expected
    assert chat.reply("hello there", [], "", GREEDY) == expected


def test_stop_event_ends_generation_early(chat):
    long = GenerationSettings(temperature=0, max_new_tokens=200, repetition_penalty=1.0)
    stop = threading.Event()
    seen = []
    for text in chat.stream("hello there", [], "", long, stop):
        seen.append(text)
        if len(seen) == 2:
            stop.set()
    full = chat.reply("hello there", [], "", long)
    assert len(seen) <= 4 and len(seen[-1]) < len(full)


def test_closing_the_stream_releases_the_model(chat):
    stream = chat.stream("hello there", [], "", GenerationSettings(temperature=0, max_new_tokens=200))
    next(stream)
    stream.close()
    assert chat.loaded.lock.acquire(timeout=10), "generation must stop once the consumer is gone"
    chat.loaded.lock.release()


@pytest.mark.parametrize("field, value", [("temperature", -1), ("top_p", 0), ("max_new_tokens", 0),
                                          ("repetition_penalty", 9)])
def test_generation_settings_are_validated(field, value):
    with pytest.raises(InputError):
        GenerationSettings(**{field: value})


def test_message_text_flattens_gradio_content_parts():
    assert message_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]) == "ab"
    assert message_text(None) == ""
