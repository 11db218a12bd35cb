"""Build the trainable model: a 4-bit base (QLoRA) or a full-precision base with LoRA on top.

- generative: a causal LM, ``prepare_model_for_kbit_training`` when quantized, LoRA on the
  target modules.
- head: an encoder (e.g. the embedded MiniLM) with a new classification or
  token-classification head; the encoder body is 4-bit + LoRA, the head trains in full
  (PEFT ``modules_to_save``, so it is saved inside the adapter file).
"""

from __future__ import annotations

import torch

from assistant.core.head_loading import load_head_model
from assistant.core.loading import LoadedModel, load_causal_lm, load_tokenizer, pick_device, quantization_config
from assistant.core.machine_settings import MachineSettings
from assistant.core.model_sources import resolve_model
from finetune.byte_dropout import use_byte_dropout
from finetune.config import FinetuneConfig


def lora_config(config: FinetuneConfig, task_type: str, modules_to_save: list[str] | None = None):
    from peft import LoraConfig

    targets = config.target_modules.strip()
    target_modules = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    return LoraConfig(task_type=task_type, r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=target_modules,
                      modules_to_save=modules_to_save)


def keep_4bit_layout_trainable(model) -> None:
    """Stop bitsandbytes from repacking 4-bit weights for its fused CPU inference kernel.

    On CPUs with AVX512-BF16, a Linear4bit layer run in eval mode without grad repacks its
    weight for a kernel that has no backward; training after a validation pass would then
    silently drop the gradient through the frozen base layers. Training keeps the standard layout.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def _prepare(model, quantized: bool):
    from peft import prepare_model_for_kbit_training

    keep_4bit_layout_trainable(model)
    if quantized:
        # Gradient checkpointing trades compute for memory; small models on a CPU want the compute.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=torch.cuda.is_available())
    return model


def _cheap_dropout_on_cpu(model) -> None:
    if next(model.parameters()).device.type == "cpu":
        use_byte_dropout(model)  # nn.Dropout's float RNG was a large share of a CPU QLoRA step


def build_generative(config: FinetuneConfig, machine: MachineSettings) -> tuple[torch.nn.Module, LoadedModel]:
    """(peft model, the LoadedModel wrapping it for task evaluation), loaded on ``machine``'s device, cache
    and trust setting."""
    from peft import get_peft_model

    loaded = load_causal_lm(config.base, config.quant if config.quant == "nf4" else "fp32", machine.device,
                            machine.trust_remote_code, machine.cache_dir)
    model = _prepare(loaded.model, config.quant == "nf4")
    model = get_peft_model(model, lora_config(config, "CAUSAL_LM"))
    _cheap_dropout_on_cpu(model)
    loaded.model = model
    return model, loaded


def build_head(config: FinetuneConfig, labels: list[str], token_level: bool, machine: MachineSettings):
    """(peft model, tokenizer) for sequence or token classification on an encoder, loaded per ``machine``."""
    from peft import get_peft_model

    location = resolve_model(config.base, machine.cache_dir).location
    device = pick_device(machine.device)
    kwargs = {"trust_remote_code": machine.trust_remote_code}
    bnb = quantization_config(config.quant, device) if config.quant == "nf4" else None
    if bnb is not None:
        bnb.llm_int8_skip_modules = ["classifier", "pooler"]  # the new head stays in full precision
        kwargs.update(quantization_config=bnb, device_map=device)
    model = load_head_model(location, labels, token_level, **kwargs)
    model = _prepare(model, bnb is not None)
    model = get_peft_model(model, lora_config(config, "TOKEN_CLS" if token_level else "SEQ_CLS",
                                              modules_to_save=["classifier"]))
    _cheap_dropout_on_cpu(model)
    return model, load_tokenizer(location)


def encode_head_examples(rows: list[dict], tokenizer, labels: list[str], token_level: bool, max_len: int):
    """Token ids with one label per text, or one label per word (first sub-token only)."""
    index = {label: i for i, label in enumerate(labels)}
    examples = []
    for row in rows:
        if not token_level:
            ids = tokenizer(row["text"], truncation=True, max_length=max_len)["input_ids"]
            examples.append({"input_ids": ids, "labels": index[row["label"]]})
            continue
        encoded = tokenizer(row["tokens"], is_split_into_words=True, truncation=True, max_length=max_len)
        word_labels, previous = [], None
        for word in encoded.word_ids():
            word_labels.append(-100 if word is None or word == previous else index[row["tags"][word]])
            previous = word
        examples.append({"input_ids": encoded["input_ids"], "labels": word_labels})
    return examples


@torch.no_grad()
def head_predict(model, examples: list[dict], pad_id: int, batch_size: int = 32) -> list:
    """Argmax predictions (and their probabilities) for encoded head examples."""
    from finetune.encode import collate

    model.eval()
    out = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        batch = collate(chunk, pad_id)
        probs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float().softmax(-1)
        for i, example in enumerate(chunk):
            if isinstance(example["labels"], int):
                conf, label = probs[i].max(-1)
                out.append((int(label), float(conf)))
            else:
                keep = [j for j, x in enumerate(example["labels"]) if x != -100]
                out.append([int(probs[i, j].argmax()) for j in keep])
    return out
