"""GGUF export (finetune/export_gguf.py): merged model and LoRA-only files that llama.cpp loads.

The oracle is transformers in fp32 running base + PEFT adapter. llama.cpp evaluates the oracle's own
64-token greedy reply (teacher-forced) and its logits must match the oracle's within a stated
tolerance (tests/cross_engine.py says why exact agreement is no test across engines):

- f32 merged file and LoRA-only file: |logit - oracle| <= 0.01 (llama.cpp's f16 KV cache: measured
  max 0.0028); greedy tokens agree wherever the oracle's top-2 margin exceeds 0.02.
- q8_0 merged file: <= 0.15 (8-bit weight blocks: measured max 0.064), tokens likewise with 0.3.

Each comparison has a control: the same llama.cpp logits against the base model without the adapter
must be more than twice the tolerance away, so a missing adapter fails (measured: 0.89 away; a doubled
LoRA scale 0.71).
"""

import json

import numpy as np
import pytest
import torch

from assistant.core.errors import InputError
from finetune.adapters import AdapterStore
from finetune.export import MARKER, main
from finetune.export_gguf import export_gguf
from tests.cross_engine import LOGIT_ATOL, decisive_disagreements, oracle_logits
from tests.tiny_models import build_tiny_gguf

llama_cpp = pytest.importorskip("llama_cpp")
STEPS = 64
Q8_ATOL = 0.15  # q8_0 weights (blocks of 32, one scale each): measured max |logit - oracle| 0.064


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return build_tiny_gguf(tmp_path_factory.mktemp("gguf-base"))


@pytest.fixture(scope="module")
def store(tmp_path_factory, base, tiny_bert_dir):
    from finetune.config import FinetuneConfig
    from tests.recipe_runs import run_new

    data_dir = tmp_path_factory.mktemp("gguf-export-data")
    common = dict(task="classification", data="finetune/samples/sentiment_en.csv", max_steps=3, batch_size=8,
                  eval_limit=4, learning_rate=5e-2, data_dir=str(data_dir))
    run_new(FinetuneConfig(base=str(base[0]), output="tuned", **common))
    run_new(FinetuneConfig(base=str(tiny_bert_dir), approach="head", output="head", **common))
    return AdapterStore(data_dir / "adapters")


@pytest.fixture(scope="module")
def oracle(store, base):
    """Base + PEFT adapter in transformers fp32, and the prompt the comparison runs on."""
    from peft import PeftModel

    from assistant.core.loading import load_causal_lm
    from assistant.core.generation import encode_messages

    loaded = load_causal_lm(str(base[0]), quant="fp32")
    model = PeftModel.from_pretrained(loaded.model, str(store.get("tuned").path)).eval()
    prompt = encode_messages(loaded.tokenizer, [{"role": "user", "content": "Review: a wonderful, moving film"}])
    return model, loaded.tokenizer, prompt


def _assert_matches_oracle(llm, model, tokenizer, prompt, atol: float) -> None:
    """llama.cpp's logits along the oracle's greedy reply are within ``atol`` of base + PEFT's, its greedy
    tokens agree at every step where the oracle's top-2 margin exceeds ``2 * atol``, and the base model
    alone (the adapter missing) is more than ``2 * atol`` away: the comparison can tell the adapter apart."""
    with torch.no_grad():
        reply = model.generate(torch.tensor([prompt]), max_new_tokens=STEPS, min_new_tokens=STEPS, do_sample=False,
                               pad_token_id=tokenizer.eos_token_id)[0, len(prompt):].tolist()
    llm.eval(prompt + reply[:-1])
    engine = np.array(llm.scores[len(prompt) - 1:len(prompt) - 1 + STEPS])
    expected = oracle_logits(model, prompt, reply)
    gap = float(np.abs(engine - expected).max())
    assert gap <= atol, f"llama.cpp logits differ from base + PEFT by up to {gap:.4f} (tolerance {atol})"
    assert not decisive_disagreements(expected, engine.argmax(axis=1).tolist(), 2 * atol)
    with model.disable_adapter():
        without_adapter = oracle_logits(model, prompt, reply)
    assert np.abs(engine - without_adapter).max() > 2 * atol, "the adapter barely changes the logits: no test"


def test_merged_q8_0_agrees_with_base_plus_peft(store, oracle, tmp_path):
    folder = export_gguf(store.get("tuned"), tmp_path / "out", quant="q8_0")
    marker = json.loads((folder / MARKER).read_text())
    assert marker["format"] == "gguf" and marker["file"] == "tuned-q8_0.gguf"
    assert sorted(p.name for p in folder.iterdir()) == ["Modelfile", MARKER, "tuned-q8_0.gguf"]
    modelfile = (folder / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./tuned-q8_0.gguf\n") and "<|im_start|>" in modelfile
    llm = llama_cpp.Llama(model_path=str(folder / "tuned-q8_0.gguf"), n_ctx=256, logits_all=True, verbose=False)
    assert llm.metadata["tokenizer.chat_template"] == oracle[1].chat_template
    _assert_matches_oracle(llm, *oracle, atol=Q8_ATOL)


def test_merged_f32_matches_the_oracle(store, oracle, tmp_path):
    folder = export_gguf(store.get("tuned"), tmp_path / "f32", quant="f32")
    llm = llama_cpp.Llama(model_path=str(folder / "tuned-f32.gguf"), n_ctx=256, logits_all=True, verbose=False)
    _assert_matches_oracle(llm, *oracle, atol=LOGIT_ATOL)


def test_lora_only_file_on_the_base_agrees_with_peft(store, oracle, base, tmp_path):
    folder = export_gguf(store.get("tuned"), tmp_path / "lora", fmt="gguf-lora")
    lora = folder / "tuned-lora.gguf"
    assert (folder / "Modelfile").read_text().startswith(f"FROM {base[0]}\nADAPTER ./tuned-lora.gguf\n")
    llm = llama_cpp.Llama(model_path=str(base[0]), lora_path=str(lora), n_ctx=256, logits_all=True, verbose=False)
    _assert_matches_oracle(llm, *oracle, atol=LOGIT_ATOL)


def test_refusals_name_the_fix(store, tmp_path):
    with pytest.raises(InputError, match="classifier head on an encoder.*safetensors"):
        export_gguf(store.get("head"), tmp_path / "head")
    with pytest.raises(InputError, match="--quant 'q2'"):
        export_gguf(store.get("tuned"), tmp_path / "x", quant="q2")
    (tmp_path / "taken").mkdir()
    with pytest.raises(InputError, match="not an earlier export"):
        export_gguf(store.get("tuned"), tmp_path / "taken", overwrite=True)


def test_unknown_architecture_names_the_known_ones(tiny_bert_dir, tmp_path):
    from transformers import AutoModel, AutoTokenizer

    from assistant.core.gguf.model_file import write_model_gguf

    with pytest.raises(InputError, match="does not know the architecture BertModel; it knows LlamaForCausalLM"):
        write_model_gguf(AutoModel.from_pretrained(tiny_bert_dir), AutoTokenizer.from_pretrained(tiny_bert_dir),
                         tmp_path / "bert.gguf")
    assert not list(tmp_path.iterdir())


def test_cli_writes_gguf(store, tmp_path, capsys):
    data_dir = store.root.parent
    assert main(["tuned", "--format", "gguf", "--quant", "f16", "--output", str(tmp_path / "cli"),
                 "--data-dir", str(data_dir)]) == 0
    assert (tmp_path / "cli" / "tuned-f16.gguf").is_file()
    assert main(["head", "--format", "gguf-lora", "--output", str(tmp_path / "h"), "--data-dir", str(data_dir)]) == 2
    assert "GGUF export is for generative" in capsys.readouterr().err


def test_panel_gguf_export_offers_a_zip_with_the_file_and_modelfile(store, tmp_path):
    import zipfile

    from assistant.ui.adapters_panel import export_adapter_gguf

    with pytest.raises(InputError, match="Pick the adapter"):
        export_adapter_gguf(store, None, tmp_path)
    archive = export_adapter_gguf(store, "tuned", tmp_path)
    assert archive == tmp_path / "tuned-gguf.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    assert {"tuned-gguf/tuned-q8_0.gguf", "tuned-gguf/Modelfile", f"tuned-gguf/{MARKER}"} == names
    assert export_adapter_gguf(store, "tuned", tmp_path) == archive  # a second export replaces the first
