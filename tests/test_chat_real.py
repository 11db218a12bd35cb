"""The embedded SmolLM2-135M-Instruct, loaded as the app loads it (4-bit NF4 on the CPU)."""

import pytest

from assistant.chat import ChatEngine, GenerationSettings

pytestmark = pytest.mark.real
GREEDY = GenerationSettings(temperature=0, max_new_tokens=24)


def test_default_model_is_really_4bit(real_chat_loaded):
    import bitsandbytes as bnb

    layers = real_chat_loaded.model.model.layers
    assert len(layers) == 30
    assert all(isinstance(layer.mlp.down_proj, bnb.nn.Linear4bit) for layer in layers)
    assert real_chat_loaded.footprint_bytes < 200 * 2**20  # ~159 MiB vs ~513 MiB in fp32


def test_streams_a_reply_in_english_and_chinese(real_chat_loaded):
    engine = ChatEngine(real_chat_loaded)
    english = list(engine.stream("What is the capital of France?", [], "", GREEDY))
    assert len(english) > 2 and "Paris" in english[-1]
    chinese = engine.reply("中国的首都是哪里？", [], "", GREEDY)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese)


def test_stream_equals_non_streamed_reply(real_chat_loaded):
    engine = ChatEngine(real_chat_loaded)
    *_, streamed = engine.stream("Name a fruit.", [], "Be brief.", GREEDY)
    assert streamed == engine.reply("Name a fruit.", [], "Be brief.", GREEDY)
