"""FAQ retrieval and answering: tokeniser, pooling, the real MiniLM index, thresholds, answers in the
question's language, the grounded prompt, chat routing, the training example and the metrics.

    pytest tests/test_faq_retrieval.py -q
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from assistant.core.errors import InputError
from assistant.faq.embeddings import SentenceEncoder, default_encoder, mean_pool
from assistant.faq.knowledge_base import KnowledgeBase, load_builtin, load_upload
from assistant.faq.retrieval import RetrievalSettings, get_index, tokenize
from assistant.core.model_sources import embedded_path
from assistant.tasks import faq

OVERFIT_EN = "how do I stop my model from overfitting during fine-tuning"
OVERFIT_ZH = "微调的时候模型过拟合了怎么办？"


def builtin_entry(entry_id: str):
    return next(e for e in load_builtin().entries if e.id == entry_id)


# --- no model ---------------------------------------------------------------------------------------

def test_tokenize_english_words_and_chinese_jieba_words():
    assert tokenize("How do the models overfit during fine-tuning?") == ["model", "overfit", "during", "fine-tun"]
    assert tokenize("LoRA 的秩") == ["lora", "秩"]  # 的 is a stop word
    # jieba words; question words (是什么, 怎么) and 时 are stop words
    assert tokenize("大语言模型是什么？") == ["大", "语言", "模型"]
    assert tokenize("微调时学习率怎么设置") == ["微调", "学习", "率", "设置"]


def test_mean_pool_ignores_padding():
    states = torch.tensor([[[1.0, 1.0], [3.0, 5.0], [100.0, 100.0]]])
    assert torch.allclose(mean_pool(states, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_settings_are_checked():
    with pytest.raises(InputError, match="route_threshold"):
        RetrievalSettings(threshold=0.5, route_threshold=0.3)
    with pytest.raises(InputError, match="top_k"):
        RetrievalSettings(top_k=0)
    assert RetrievalSettings().dense_weight("zh") == 0.3 and RetrievalSettings().dense_weight("en") == 0.5
    assert RetrievalSettings().threshold_for("zh") == 0.15 and RetrievalSettings().threshold_for("en") == 0.13
    with pytest.raises(InputError, match="route_threshold"):
        RetrievalSettings(threshold_zh=0.5, route_threshold=0.4)


def test_training_example_uses_the_rows_own_answer_as_the_only_context():
    row = {"question": "What is NF4?", "answer": "A 4-bit data type for normally distributed weights."}
    messages, target = faq.training_example(row)
    assert target == row["answer"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert messages[-1]["content"].count("FAQ entry") == 1 and row["answer"] in messages[-1]["content"]
    assert messages[-1]["content"].endswith(row["question"])
    with pytest.raises(InputError, match="non-empty 'question' and 'answer'"):
        faq.training_example({"question": "x", "answer": " "})


def test_evaluate_metrics_on_known_values():
    result = faq.evaluate(["The cat sat.", "a dog", "完全不同", "LoRA trains small matrices"],
                          ["the cat sat", "a red dog runs", "低秩适配", "LoRA trains two small matrices"])
    assert result["exact_match"] == 0.25
    # token-F1: 1; "dog" vs "red dog runs": p=1, r=1/3 -> 0.5; no common character: 0; p=1, r=4/5 -> 8/9
    assert result["token_f1"] == pytest.approx((1.0 + 0.5 + 0.0 + 8 / 9) / 4)
    assert result["hit_rate"] == 0.75 and result["count"] == 4
    with pytest.raises(InputError, match="must pair up"):
        faq.evaluate(["a"], [])


def test_model_reply_cleanup_cuts_echoes_and_loops():
    assert faq.parse_output("Answer: Use early stopping.\n\nQ: another?") == "Use early stopping."
    looping = "微调很有用。" + "可以用条条数据，" * 6
    assert faq.clean_model_answer(looping) == "微调很有用。"  # cut before the loop, at a sentence end
    plain = "A fine answer that says one thing once."
    assert faq.clean_model_answer(plain) == plain


def test_grounded_share_flags_words_not_in_the_entries():
    entry = builtin_entry("faq-025")
    copied = entry.in_language("en").answer.split(". ")[0]
    assert faq.grounded_share(copied, "overfitting?", [entry]) == 1.0
    assert faq.grounded_share("Bananas grow on tropical plantations in Ecuador.", "overfitting?", [entry]) < 0.3


# --- real MiniLM ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_faq_loaded(tmp_path_factory):
    """The tiny random Llama with a 2048-token context: an FAQ entry alone is ~700 tiny-vocabulary tokens."""
    from assistant.core.loading import load_causal_lm
    from tests.tiny_models import build_tiny_llama

    return load_causal_lm(str(build_tiny_llama(tmp_path_factory.mktemp("faq") / "llama", max_positions=2048)), "fp32")


class CountingEncoder(SentenceEncoder):
    """The real MiniLM, counting forward calls."""

    def __init__(self):
        super().__init__(embedded_path("minilm-l6-v2"))
        self.calls: list[int] = []

    def encode(self, texts):
        self.calls.append(len(texts))
        return super().encode(texts)


@pytest.mark.real
def test_encoder_vectors_are_unit_length_and_batch_independent():
    encoder = default_encoder()
    texts = ["short", "a much longer sentence about fine-tuning language models on a small dataset"]
    together = encoder.encode(texts)
    assert together.shape == (2, 384)
    assert torch.allclose(together.norm(dim=1), torch.ones(2), atol=1e-5)
    alone = torch.cat([encoder.encode([t]) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)  # padding does not leak into the mean


@pytest.mark.real
def test_index_embeds_once_and_a_query_costs_one_forward_pass():
    encoder = CountingEncoder()
    kb = load_builtin()
    index = get_index(kb, encoder=encoder)
    assert encoder.calls == [61]  # only English texts are embedded (MiniLM is an English encoder)
    assert get_index(KnowledgeBase("same content", kb.entries), encoder=encoder) is index  # keyed by content
    index.search(OVERFIT_EN)
    assert encoder.calls == [61, 1]
    index.search(OVERFIT_ZH)
    assert encoder.calls == [61, 1, 1]  # a Chinese question is embedded too, against the English texts


@pytest.mark.real
def test_overfitting_paraphrase_ranks_the_overfitting_entry_first():
    matches = get_index(load_builtin()).search(OVERFIT_EN, 3)
    assert matches[0].entry.id == "faq-025"
    assert matches[0].score >= RetrievalSettings().route_threshold
    assert matches[0].score > matches[1].score >= matches[2].score


@pytest.mark.real
def test_out_of_scope_question_is_not_covered():
    for question, first_line in (("What's a good recipe for banana bread?", faq.NOT_COVERED["en"]),
                                 ("明天北京天气怎么样，要不要带伞？", faq.NOT_COVERED["zh"])):
        result = faq.answer(question, load_builtin())
        assert result["sources"] == []
        assert result["answer"].startswith(first_line)
        assert faq.NOT_COVERED["en"] in result["answer"] and faq.NOT_COVERED["zh"] in result["answer"]


@pytest.mark.real
def test_answers_come_in_the_language_of_the_question():
    entry = builtin_entry("faq-025")
    chinese = faq.answer(OVERFIT_ZH, load_builtin())
    assert chinese["answer"] == entry.in_language("zh").answer
    assert chinese["sources"][0] == {"id": "faq-025", "question": entry.in_language("zh").question,
                                     "score": chinese["sources"][0]["score"]}
    english = faq.answer(OVERFIT_EN, load_builtin())
    assert english["answer"] == entry.in_language("en").answer
    assert [set(s) for s in english["sources"]] == [{"id", "question", "score"}] * len(english["sources"])
    assert all(s["score"] >= RetrievalSettings().threshold for s in english["sources"])


@pytest.mark.real
def test_grounded_prompt_holds_only_the_retrieved_entries():
    kb = load_builtin()
    matches = faq.retrieve(OVERFIT_EN, kb)
    retrieved = {m.entry.id for m in matches}
    prompt = "\n".join(m["content"] for m in faq.build_messages(OVERFIT_EN, [m.entry for m in matches]))
    for entry in kb.entries:
        present = entry.in_language("en").answer in prompt
        assert present == (entry.id in retrieved), entry.id
    assert "only" in prompt and OVERFIT_EN in prompt


@pytest.mark.real
def test_use_model_holds_the_model_lock_and_never_shows_an_ungrounded_reply(tiny_faq_loaded):
    kb, result = load_builtin(), {}
    worker = threading.Thread(target=lambda: result.update(faq.answer(OVERFIT_EN, kb, tiny_faq_loaded, use_model=True)))
    with tiny_faq_loaded.lock:
        worker.start()
        time.sleep(1.5)
        assert not result  # waiting for the lock this test holds
    worker.join(timeout=120)
    entry = builtin_entry("faq-025")
    # The tiny random model writes noise; the grounding check replaces it with the entry itself.
    assert result["answer"].startswith(entry.in_language("en").answer)
    assert faq.STRAYED_NOTE["en"] in result["answer"]
    assert result["sources"][0]["id"] == "faq-025"
    with pytest.raises(InputError, match="needs a loaded chat model"):
        faq.answer(OVERFIT_EN, kb, None, use_model=True)


@pytest.mark.real
def test_uploaded_faq_answers_for_its_session(tmp_path):
    path = tmp_path / "office.md"
    path.write_text("## Where is the coffee machine?\nOn the second floor, next to the lifts.\n", "utf-8")
    kb = load_upload(path, load_builtin(), "extend")
    result = faq.answer("where can I find the coffee machine", kb)
    assert result["sources"][0]["id"] == "upload-001" and "second floor" in result["answer"]
    elsewhere = faq.answer("where can I find the coffee machine", load_builtin())  # another session
    assert "second floor" not in elsewhere["answer"]
    assert all(s["id"] != "upload-001" for s in elsewhere["sources"])


@pytest.mark.real
def test_chat_router_cites_in_faq_answers_and_ignores_chit_chat():
    router = faq.FaqRouter(load_builtin())
    routed = router.route("What is QLoRA?")
    answer_text, sources_line = routed.rsplit("\n\n", 1)
    assert answer_text == builtin_entry("faq-034").in_language("en").answer
    assert sources_line.startswith("Sources: faq-034 (0.")
    chinese = router.route("微调过程中出现过拟合怎么办？")
    assert chinese.startswith(builtin_entry("faq-025").in_language("zh").answer)
    assert chinese.rsplit("\n\n", 1)[1].startswith("来源: faq-025 (0.")
    for chit_chat in ("hi, how are you?", "Tell me a joke", "thanks!", "你好", "讲个笑话吧", ""):
        assert router.route(chit_chat) is None, chit_chat


@pytest.mark.real
def test_a_chinese_question_finds_an_entry_through_its_english_terms_and_its_chinese_side():
    index = get_index(load_builtin())
    # Chinese wording with the English term only the entry's English side and answers use
    assert index.search("self-attention 的原理能讲一下吗？", 1)[0].entry.id == "faq-010"
    # an English question finds the same bilingual entry through its English side
    assert index.search("how does self-attention work", 1)[0].entry.id == "faq-010"
    assert index.search("微调的时候模型过拟合了怎么办？", 1)[0].entry.id == "faq-025"
