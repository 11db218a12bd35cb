"""Tiny random models built from a config in code, for fast tests of the real code paths.

A byte-level BPE tokenizer trained here on a few sentences (English and Chinese, so every
character round-trips), with a ChatML chat template; a 2-layer Llama (hidden 64) and a
2-layer BERT (hidden 64) on top. Nothing is downloaded.

    python -m tests.tiny_models /tmp/tiny   # write tiny-llama/ and tiny-bert/ there
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Fine-tuning adapts a pretrained model to a new task with labelled data.",
    "positive negative neutral sports finance technology PER ORG LOC MISC",
    "Translate English to German: the house is small. Das Haus ist klein.",
    "大模型通过预训练学习语言知识，再通过微调适应下游任务。",
    "体育 财经 科技 正面 负面 北京 上海 中国",
    "Question: what is LoRA? Answer: a low-rank adapter for efficient fine-tuning.",
]


def build_tokenizer(vocab_size: int = 400, wordpiece: bool = False):
    """A fast tokenizer trained in code: byte-level BPE (decoder) or WordPiece (encoder)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if wordpiece:
        special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        tok.train_from_iterator(CORPUS, trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=special))
        from tokenizers.processors import TemplateProcessing

        cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
        tok.post_processor = TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
            special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
            sep_token="[SEP]", mask_token="[MASK]",
        )

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=special, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML_TEMPLATE
    return fast


def build_tiny_llama(folder: Path, max_positions: int = 512, seed: int = 0) -> Path:
    """Save a 2-layer, hidden-64 Llama with the tiny tokenizer to ``folder``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_positions,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_tiny_gguf(folder: Path, quant: str = "f32", seed: int = 0, hidden: int = 64) -> tuple[Path, Path]:
    """A tiny Llama written as GGUF by the project's own writer: (the .gguf file, its HF folder).

    The layers' weights are scaled up from the 0.02 initialisation, so the layers (not just the tied
    embeddings, which make a random model repeat its last token) decide each next token; that makes
    token-for-token comparisons between engines meaningful.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from assistant.core.gguf.model_file import write_model_gguf

    folder = Path(folder)
    hf_folder = folder / f"tiny-llama-{hidden}-hf"
    if not (hf_folder / "config.json").is_file():
        torch.manual_seed(seed)
        tokenizer = build_tokenizer()
        config = LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True,
        )
        model = LlamaForCausalLM(config)
        with torch.no_grad():
            for name, weight in model.named_parameters():
                if name.startswith("model.layers.") and weight.ndim == 2:
                    weight.mul_(12.0)
        model.save_pretrained(hf_folder)
        tokenizer.save_pretrained(hf_folder)
    model = AutoModelForCausalLM.from_pretrained(hf_folder)
    tokenizer = AutoTokenizer.from_pretrained(hf_folder)
    target = write_model_gguf(model, tokenizer, folder / f"tiny-llama-{hidden}-{quant}.gguf", quant, name="tiny-llama")
    return target, hf_folder


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """Save a 2-layer, hidden-64 BERT encoder with a WordPiece tokenizer to ``folder``."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(vocab_size=300, wordpiece=True)
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id,
    )
    model = BertModel(config)
    folder = Path(folder)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tiny")
    print(build_tiny_llama(root / "tiny-llama"), build_tiny_bert(root / "tiny-bert"))
