"""Write a transformers causal LM (weights, config, tokenizer, chat template) as one GGUF file.

llama.cpp's own converter is not on PyPI; this writer covers the architectures in
``assistant.core.gguf.architectures`` with byte-level BPE tokenizers (GPT-2 style: SmolLM2, Qwen2,
Llama 3). When the model came from a GGUF file, that file's tokenizer fields are copied verbatim,
so the export tokenizes exactly like the original (including llama.cpp's pre-tokenizer name).

    python -m assistant.core.gguf.model_file MODEL_FOLDER OUT.gguf [q8_0|f16|q4_0|f32]

The file is written under a temporary name beside the target and renamed into place.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from assistant.core.atomic_files import temporary_path
from assistant.core.errors import InputError
from assistant.core.gguf.architectures import architecture_of, gguf_tensor_name, permute_rows, qk_heads, tensor_name_map
from assistant.core.gguf.writing import discard, finish

QUANT_TYPES = ("q8_0", "f16", "q4_0", "f32")
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7}  # llama_ftype values


def _rope_theta(config) -> float:
    params = getattr(config, "rope_parameters", None) or {}
    scaling = params.get("rope_type") or (getattr(config, "rope_scaling", None) or {}).get("rope_type")
    if scaling not in (None, "default"):
        raise InputError(f"GGUF export does not handle rope scaling '{scaling}' yet; export the merged "
                         "safetensors folder and convert it with llama.cpp's convert_hf_to_gguf.py.")
    return float(params.get("rope_theta") or getattr(config, "rope_theta", 10000.0))


def _add_hparams(writer, config, block_count: int) -> None:
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    writer.add_context_length(int(config.max_position_embeddings))
    writer.add_embedding_length(int(config.hidden_size))
    writer.add_block_count(block_count)
    writer.add_feed_forward_length(int(config.intermediate_size))
    writer.add_head_count(int(config.num_attention_heads))
    writer.add_head_count_kv(int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads))
    writer.add_rope_dimension_count(int(head_dim))
    writer.add_key_length(int(head_dim))
    writer.add_value_length(int(head_dim))
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
    writer.add_vocab_size(int(config.vocab_size))


def _copy_tokenizer_fields(writer, source_gguf: Path) -> None:
    import gguf

    reader = gguf.GGUFReader(str(source_gguf))
    for key, field in reader.fields.items():
        if not key.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub_type = field.types[1] if vtype == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
        writer.add_key_value(key, field.contents(), vtype, sub_type)


def _bpe_merges(tokenizer) -> list[str]:
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    model = state.get("model", {})
    if model.get("type") != "BPE":
        raise InputError(f"GGUF export needs a byte-level BPE tokenizer; this one is {model.get('type')}.")
    return [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]


def _pre_tokenizer_name(tokenizer) -> str:
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    pre = state.get("pre_tokenizer") or {}
    kinds = [p.get("type") for p in pre.get("pretokenizers", [pre])]
    if kinds == ["ByteLevel"] and pre.get("use_regex", True):
        return "gpt-2"  # llama.cpp's GPT-2 split regex is the one ByteLevel(use_regex=True) applies
    raise InputError(f"GGUF export does not know this tokenizer's pre-tokenizer ({', '.join(map(str, kinds))}); "
                     "it knows GPT-2 byte-level BPE, and any tokenizer of a model that came as a GGUF file.")


def _add_tokenizer(writer, tokenizer, vocab_size: int) -> None:
    import gguf

    vocab = tokenizer.get_vocab()
    by_id = {i: token for token, i in vocab.items()}
    added = tokenizer.get_added_vocab()
    special = set(tokenizer.all_special_tokens)
    tokens, types = [], []
    for i in range(vocab_size):
        token = by_id.get(i)
        if token is None:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if token in special else
                         gguf.TokenType.USER_DEFINED if token in added else gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer_name(tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(_bpe_merges(tokenizer))
    for setter, token_id in ((writer.add_bos_token_id, tokenizer.bos_token_id),
                             (writer.add_eos_token_id, tokenizer.eos_token_id),
                             (writer.add_pad_token_id, tokenizer.pad_token_id),
                             (writer.add_unk_token_id, tokenizer.unk_token_id)):
        if token_id is not None:
            setter(int(token_id))
    writer.add_add_bos_token(bool(getattr(tokenizer, "add_bos_token", False)))
    if getattr(tokenizer, "chat_template", None):
        writer.add_chat_template(tokenizer.chat_template)


def _tensor_data(array: np.ndarray, quant: str):
    """(data, raw_dtype) for the writer: 2-D weights in ``quant``, the rest in float32."""
    import gguf

    if array.ndim != 2 or quant == "f32":
        return array.astype(np.float32), None
    if quant == "f16":
        return array.astype(np.float16), None
    qtype = gguf.GGMLQuantizationType.Q8_0 if quant == "q8_0" else gguf.GGMLQuantizationType.Q4_0
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if array.shape[-1] % block:
        return array.astype(np.float16), None  # rows that do not split into blocks stay f16, as llama.cpp does
    return gguf.quants.quantize(array.astype(np.float32), qtype), qtype


def write_model_gguf(model, tokenizer, target: str | Path, quant: str = "q8_0", *,
                     tokenizer_gguf: Path | None = None, name: str | None = None) -> Path:
    """Write ``model`` (a float transformers causal LM) and its tokenizer to ``target``; returns it.

    ``tokenizer_gguf``: a GGUF file whose tokenizer fields are copied instead of building them
    from ``tokenizer`` (pass the file the base model came from).
    """
    import gguf
    import torch

    if quant not in QUANT_TYPES:
        raise InputError(f"GGUF quantization '{quant}' is not one of {', '.join(QUANT_TYPES)}.")
    config = model.config
    _, arch = architecture_of(config)
    block_count = int(config.num_hidden_layers)
    name_map = tensor_name_map(arch, block_count)
    target = Path(target)
    temp = temporary_path(target)
    writer = gguf.GGUFWriter(str(temp), arch.gguf_name)
    try:
        writer.add_type("model")
        writer.add_name(name or getattr(config, "_name_or_path", "") or target.stem)
        _add_hparams(writer, config, block_count)
        writer.add_file_type(FILE_TYPES[quant])
        writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
        if tokenizer_gguf is not None:
            _copy_tokenizer_fields(writer, Path(tokenizer_gguf))
            if getattr(tokenizer, "chat_template", None) and "tokenizer.chat_template" not in writer.kv_data[0]:
                writer.add_chat_template(tokenizer.chat_template)
        else:
            _add_tokenizer(writer, tokenizer, int(config.vocab_size))
        tied = bool(getattr(config, "tie_word_embeddings", False))
        with torch.no_grad():
            for hf_name, tensor in model.state_dict().items():
                if tied and hf_name == "lm_head.weight":
                    continue  # llama.cpp reads the output projection from token_embd when it is absent
                gguf_name = gguf_tensor_name(name_map, hf_name)
                if gguf_name is None:
                    if hf_name.endswith("rotary_emb.inv_freq"):
                        continue
                    raise InputError(f"GGUF export does not know where tensor {hf_name!r} goes.")
                array = tensor.detach().to(torch.float32).cpu().numpy()
                heads = qk_heads(gguf_name, config) if arch.permute_qk else None
                if heads:
                    array = permute_rows(array, heads)
                data, raw_dtype = _tensor_data(array, quant)
                writer.add_tensor(gguf_name, data, raw_dtype=raw_dtype)
        return finish(writer, temp, target)
    except BaseException:
        discard(writer, temp)
        raise


if __name__ == "__main__":
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, out = sys.argv[1], sys.argv[2]
    print(write_model_gguf(AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder),
                           out, sys.argv[3] if len(sys.argv) > 3 else "q8_0"))
