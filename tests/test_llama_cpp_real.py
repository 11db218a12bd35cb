"""The embedded SmolLM2 GGUF served as the app serves it on a CPU: llama.cpp, adapters, GGUF export."""

import numpy as np
import pytest

from assistant.chat import Chat, GenerationSettings

pytestmark = pytest.mark.real
llama_cpp = pytest.importorskip("llama_cpp")
GREEDY = GenerationSettings(temperature=0, max_new_tokens=32)


@pytest.fixture(scope="module")
def served():
    from assistant.core.loading import load_served_model

    loaded = load_served_model("smollm2-135m-instruct")
    assert loaded.engine_name == "llama.cpp", loaded.notices
    return loaded


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A generative adapter really trained (a few steps) on the embedded model."""
    from finetune.adapters import AdapterStore
    from finetune.config import FinetuneConfig
    from tests.recipe_runs import run_new

    data_dir = tmp_path_factory.mktemp("real-gguf")
    run_new(FinetuneConfig(task="classification", data="finetune/samples/sentiment_en.csv", base="smollm2-135m-instruct",
                       max_steps=4, batch_size=4, eval_limit=4, learning_rate=2e-3, data_dir=str(data_dir),
                       output="real-sentiment"))
    return AdapterStore(data_dir / "adapters")


def test_chat_answers_in_english_and_chinese(served):
    chat = Chat(served)
    # (France is a near tie on this 4-bit file: "The capital..." vs "L'Étoile..." as its first token)
    assert "Tokyo" in chat.reply("What is the capital of Japan?", [], "", GREEDY)
    assert any("\u4e00" <= ch <= "\u9fff" for ch in chat.reply("中国的首都是哪里？", [], "", GREEDY))


def test_stream_equals_raw_llama_cpp_greedy(served):
    """The app's streamed reply against llama-cpp-python driven directly on the same file and ids (plain
    greedy: llama-cpp-python's own repetition penalty covers a different window than the app's)."""
    chat = Chat(served)
    greedy = GenerationSettings(temperature=0, max_new_tokens=32, repetition_penalty=1.0)
    *_, streamed = chat.stream("Name a fruit.", [], "Be brief.", greedy)
    ids, _ = chat.prompt_ids(chat.conversation("Name a fruit.", [], "Be brief."), greedy.max_new_tokens)
    raw = llama_cpp.Llama(model_path=served.location, n_ctx=512, verbose=False)
    produced = []
    for token in raw.generate(ids, temp=0.0, repeat_penalty=1.0):
        if llama_cpp.llama_vocab_is_eog(llama_cpp.llama_model_get_vocab(raw._model.model), token):
            break
        produced.append(token)
        if len(produced) == greedy.max_new_tokens:
            break
    raw.close()
    assert streamed == served.tokenizer.decode(produced, skip_special_tokens=True)


def test_trained_adapter_serves_on_llama_cpp_and_exports_to_gguf(served, trained, tmp_path):
    import torch
    from peft import PeftModel

    from assistant.core.generation import encode_messages
    from assistant.core.loading import load_causal_lm
    from assistant.served_adapters import ServedAdapters
    from assistant.tasks.classification import classify
    from finetune.export_gguf import export_gguf

    adapters = ServedAdapters(served, trained, "smollm2-135m-instruct")
    with adapters.using("real-sentiment"):
        tuned = classify(served, "An absolute delight from start to finish.", "positive, negative")
    base = classify(served, "An absolute delight from start to finish.", "positive, negative")
    assert tuned["scores"] != base["scores"]

    folder = export_gguf(trained.get("real-sentiment"), tmp_path / "gguf", quant="q8_0")
    reference = load_causal_lm("smollm2-135m-instruct", quant="fp32")
    model = PeftModel.from_pretrained(reference.model, str(trained.get("real-sentiment").path)).eval()
    prompt = encode_messages(reference.tokenizer, [{"role": "user", "content": "Tell me about fine-tuning."}])
    with torch.no_grad():
        reply = model.generate(torch.tensor([prompt]), max_new_tokens=64, min_new_tokens=64, do_sample=False,
                               pad_token_id=reference.tokenizer.eos_token_id)[0, len(prompt):].tolist()
    llm = llama_cpp.Llama(model_path=str(folder / "real-sentiment-q8_0.gguf"), n_ctx=512, logits_all=True,
                          verbose=False)
    llm.eval(prompt + reply[:-1])
    logits = np.array(llm.scores[len(prompt) - 1:len(prompt) + 63])
    logits[:, reference.tokenizer.eos_token_id] = -np.inf
    agreement = float(np.mean(logits.argmax(axis=1) == np.array(reply)))
    llm.close()
    assert agreement >= 0.9, agreement
