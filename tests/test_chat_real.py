"""The embedded SmolLM2-135M-Instruct, loaded as the app loads it (4-bit NF4 on the CPU)."""

import pytest

from assistant.chat import Chat, GenerationSettings

pytestmark = pytest.mark.real
GREEDY = GenerationSettings(temperature=0, max_new_tokens=24)


def test_default_model_is_really_4bit(real_chat_loaded):
    import bitsandbytes as bnb

    layers = real_chat_loaded.model.model.layers
    assert len(layers) == 30
    assert all(isinstance(layer.mlp.down_proj, bnb.nn.Linear4bit) for layer in layers)
    assert real_chat_loaded.footprint_bytes < 200 * 2**20  # ~159 MiB vs ~513 MiB in fp32


def test_streams_a_reply_in_english_and_chinese(real_chat_loaded):
    chat = Chat(real_chat_loaded)
    english = list(chat.stream("What is the capital of France?", [], "", GREEDY))
    assert len(english) > 2 and "Paris" in english[-1]
    chinese = chat.reply("中国的首都是哪里？", [], "", GREEDY)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chinese)


def test_the_stream_grows_into_the_greedy_reply_of_the_model_itself(real_chat_loaded):
    """The streamed text against ``model.generate`` on the same prompt ids, decoded in one piece: a stream that
    dropped, repeated or reordered a piece of text would differ from it."""
    import torch

    chat = Chat(real_chat_loaded)
    snapshots = list(chat.stream("Name three fruits.", [], "Be brief.", GREEDY))
    ids, _ = chat.prompt_ids(chat.conversation("Name three fruits.", [], "Be brief."), GREEDY.max_new_tokens)
    with real_chat_loaded.lock, torch.inference_mode():
        prompt = torch.tensor([ids])
        output = real_chat_loaded.model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                                                 pad_token_id=real_chat_loaded.tokenizer.pad_token_id,
                                                 **GREEDY.generate_kwargs())
    reference = real_chat_loaded.tokenizer.decode(output[0, len(ids):], skip_special_tokens=True)
    assert len(snapshots) > 3 and len(reference) > 20
    assert all(later.startswith(earlier) and later != earlier for earlier, later in zip(snapshots, snapshots[1:]))
    assert snapshots[-1] == reference
