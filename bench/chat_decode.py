"""Chat decode benchmark: the app's chat path against raw llama-cpp-python on the same GGUF file, for the
shipped file and the prepared copy llama.cpp serves (``assistant.core.gguf.prepared``), in one run.

    python bench/chat_decode.py                                   # the default model, every llama.cpp row
    python bench/chat_decode.py --model smollm2-135m-instruct --rows raw app raw+adapter app+adapter
    python bench/chat_decode.py --rows app-transformers plain     # the transformers rows (slow on a CPU)

Rows (each in its own subprocess, one after another, so peak RSS is that row's alone):

- ``raw`` / ``raw-shipped``: raw ``Llama.generate`` on the file the app serves (the prepared copy where
  ``--serve-format auto`` makes one) / on the shipped file: the baselines;
- ``app`` / ``app-shipped``: ``Chat`` as the app serves (``load_served_model``, engine auto: llama.cpp),
  with ``--serve-format auto`` / ``shipped``;
- ``raw+adapter`` / ``app+adapter``: the same with a rank-16 all-linear LoRA adapter (random weights of a
  trained adapter's shape, converted to GGUF LoRA as the app does; raw loads that file with ``lora_path``);
- ``app-transformers``: ``--engine transformers`` (bitsandbytes NF4 ``generate``), the old CPU path;
- ``plain``: ``model.generate`` on the fp32 transformers model.

Every run processes its whole prompt (the KV cache is dropped first), greedy, no repetition penalty.
Reports time to first token on a short, a ~500 and a ~1,500-token prompt (TTFT; for the app rows the
first text a user sees, which the streamer releases word by word), prefill tokens/s on ~500 tokens
(prompt tokens / TTFT), decode tokens/s after the first token (the app rows count the reply's tokens),
medians, peak RSS, and ratios to the raw row on the same file (app / raw, app+adapter / raw+adapter,
app-shipped / raw-shipped).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

ROWS = ("raw", "raw-shipped", "app", "app-shipped", "raw+adapter", "app+adapter", "app-transformers", "plain")
DEFAULT_ROWS = ROWS[:6]
BASELINE = {"app": "raw", "app-shipped": "raw-shipped", "app+adapter": "raw+adapter"}
# Both prompts ask for more than the measured tokens, so every row decodes the same count.
SHORT = "Write a short story about a robot who learns to paint."
LONG_CONTEXT = (
    "Fine-tuning adapts a pretrained language model to a task. Supervised fine-tuning uses labelled "
    "pairs; unsupervised fine-tuning continues pre-training on raw domain text; semi-supervised "
    "fine-tuning trains on a few labels and pseudo-labels the rest. LoRA trains small low-rank "
    "matrices beside frozen weights, and QLoRA keeps the frozen base in 4-bit NF4. "
)
PROMPTS = {"short": 0, "~500": 500, "~1500": 1500}


def long_prompt(tokenizer, target_tokens: int) -> str:
    if not target_tokens:
        return SHORT
    text = ""
    while len(tokenizer(text)["input_ids"]) < target_tokens:
        text += LONG_CONTEXT
    return text + "\nExplain the text above to a beginner, step by step, in detail."


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def random_adapter(model: str, data_dir: Path) -> str:
    """A rank-16 LoRA on every linear layer of ``model``, saved as a trained one would be."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.core.loading import load_causal_lm
    from finetune.adapters import AdapterStore, write_metadata

    torch.manual_seed(0)
    base = load_causal_lm(model, quant="fp32").model
    peft = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                           init_lora_weights=False))
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.mul_(0.01)  # a trained adapter's size of update, not a random rewrite of the model
    staging = AdapterStore(data_dir / "adapters").staging("bench-lora")
    with staging as folder:
        peft.save_pretrained(folder)
        write_metadata(folder, {"task": "instruction", "base_model": model,
                                "kind": "causal-lm-lora", "prompt_version": 1, "prompt_format": "chat",
                                "hyperparameters": {"r": 16}, "data_fingerprint": "none",
                                "metrics": {"base": {}, "adapter": {}}})
    return staging.info.name


def raw_measure(model: str, kind: str, data_dir: Path, new_tokens: int):
    """(tokenizer, measure) for raw llama-cpp-python on the file the app would load for ``kind``."""
    from llama_cpp import Llama

    from assistant.core.engines.llama_cpp_engine import cpu_threads
    from assistant.core.generation import encode_messages
    from assistant.core.gguf.prepared import prepared_gguf
    from assistant.core.model_sources import default_cache_dir, embedded_path, gguf_tokenizer

    shipped = embedded_path(model)
    path = shipped if kind == "raw-shipped" else prepared_gguf(shipped, default_cache_dir(), "auto")
    lora = None
    if kind == "raw+adapter":
        from transformers import AutoConfig

        from assistant.core.gguf.lora_file import gguf_lora_for
        from assistant.core.model_sources import resolve_model

        lora = str(gguf_lora_for(data_dir / "adapters" / "bench-lora",
                                 AutoConfig.from_pretrained(resolve_model(model).location)))
    tokenizer = gguf_tokenizer(shipped)
    llm = Llama(str(path), n_ctx=4096, n_batch=512, n_threads=cpu_threads(), n_threads_batch=cpu_threads(),
                lora_path=lora, verbose=False)

    def measure(prompt):
        ids = encode_messages(tokenizer, [{"role": "user", "content": prompt}])
        llm.reset()
        began = time.perf_counter()
        first, count = None, 0
        for token in llm.generate(ids, temp=0.0, top_k=50, top_p=1.0, min_p=0.0, repeat_penalty=1.0):
            count += 1
            first = first or time.perf_counter()
            if count >= new_tokens:
                break
        end = time.perf_counter()
        return first - began, (count - 1) / max(end - first, 1e-9), len(ids)
    return tokenizer, measure


def forget_cached_conversations(loaded) -> None:
    """Drop every conversation the llama.cpp engine keeps cached (each conversation's KV cells stay between
    turns), so the next request reads its whole prompt."""
    sequences = getattr(loaded.engine, "sequences", None)
    if sequences is not None:
        with loaded.engine.lock:
            while sequences.evict_one():
                pass


def app_measure(model: str, kind: str, data_dir: Path, new_tokens: int):
    """(tokenizer, measure) for the app's ``Chat``, as the app serves ``model`` for ``kind``."""
    from assistant.chat import Chat, GenerationSettings
    from assistant.core.loading import load_served_model
    from assistant.served_adapters import ServedAdapters
    from finetune.adapters import AdapterStore

    adapter = "bench-lora" if kind == "app+adapter" else None
    loaded = load_served_model(model, engine="transformers" if kind == "app-transformers" else "auto",
                               serve_format="shipped" if kind == "app-shipped" else "auto")
    adapters = ServedAdapters(loaded, AdapterStore(data_dir / "adapters"), model)
    chat, tokenizer = Chat(loaded, adapters), loaded.tokenizer
    greedy = GenerationSettings(temperature=0, max_new_tokens=new_tokens, repetition_penalty=1.0)
    chat.reply("Hi", settings=GenerationSettings(temperature=0, max_new_tokens=4), adapter=adapter)

    def measure(prompt):
        forget_cached_conversations(loaded)  # no reuse of the previous run's KV cache
        prompt_ids, _ = chat.prompt_ids(chat.conversation(prompt, [], ""), new_tokens)
        began = time.perf_counter()
        first, text = None, ""
        for text in chat.stream(prompt, [], "", greedy, adapter=adapter):  # text arrives word by word
            first = first or time.perf_counter()
        end = time.perf_counter()
        produced = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        return first - began, (produced - 1) / max(end - first, 1e-9), len(prompt_ids)
    return tokenizer, measure, loaded


def plain_measure(model: str, new_tokens: int):
    import torch

    from assistant.chat import Chat
    from assistant.core.loading import load_causal_lm

    loaded = load_causal_lm(model, quant="fp32")
    chat = Chat(loaded)

    def measure(prompt):
        ids, _ = chat.prompt_ids(chat.conversation(prompt, [], ""), new_tokens)
        x = torch.tensor([ids])
        with torch.inference_mode():
            began = time.perf_counter()
            loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, do_sample=False)
            ttft = time.perf_counter() - began
            began = time.perf_counter()
            loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                  min_new_tokens=new_tokens, do_sample=False)
            total = time.perf_counter() - began
        return ttft, (new_tokens - 1) / max(total - ttft, 1e-9), len(ids)
    return loaded.tokenizer, measure


def run_row(model: str, kind: str, new_tokens: int, repeats: int, data_dir: Path) -> dict:
    """Runs inside the subprocess: one row, every prompt, the median of ``repeats`` runs each."""
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    results = {}
    if kind.startswith("raw"):
        tokenizer, measure = raw_measure(model, kind, data_dir, new_tokens)
        results["file"] = "raw llama.cpp"
    elif kind == "plain":
        tokenizer, measure = plain_measure(model, new_tokens)
    else:
        tokenizer, measure, loaded = app_measure(model, kind, data_dir, new_tokens)
        results["file"] = f"{loaded.engine_name}, {loaded.precision}"
    measure("Hi")  # warm-up
    for name, target in PROMPTS.items():
        runs = [measure(long_prompt(tokenizer, target)) for _ in range(repeats)]
        results[name] = {"ttft": statistics.median(r[0] for r in runs), "tps": statistics.median(r[1] for r in runs),
                         "prompt_tokens": runs[0][2]}
    results["prefill"] = results["~500"]["prompt_tokens"] / results["~500"]["ttft"]
    results["rss"] = peak_rss_mib()
    return results


def main() -> None:
    from assistant.core.model_sources import DEFAULT_CHAT_MODEL

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_CHAT_MODEL, help="an embedded chat model's short name")
    parser.add_argument("--rows", nargs="+", default=list(DEFAULT_ROWS), choices=ROWS)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="runs per prompt; the table shows the median")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row == "make-adapter":
        random_adapter(args.model, args.data_dir)
        return
    if args.row:
        print(json.dumps(run_row(args.model, args.row, args.new_tokens, args.repeats, args.data_dir)))
        return
    measured = {}
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as data_dir:
        adapters = any("adapter" in row for row in args.rows)
        for kind in (["make-adapter"] if adapters else []) + args.rows:  # the adapter loads the fp32 model
            out = subprocess.run([sys.executable, __file__, "--row", kind, "--model", args.model, "--new-tokens",
                                  str(args.new_tokens), "--repeats", str(args.repeats), "--data-dir", data_dir],
                                 capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if out.returncode != 0:
                print(f"{kind} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            elif kind != "make-adapter":
                measured[kind] = json.loads(out.stdout.strip().splitlines()[-1])

    def ratio(kind: str, key: str, prompt: str) -> str:
        base = measured.get(BASELINE.get(kind, ""))
        return f"{measured[kind][prompt][key] / base[prompt][key]:.2f}" if base else "-"

    print(f"Model: {args.model}\n")
    print("| row | serves | prefill tok/s ~500 | TTFT short / ~500 / ~1,500 (s) | decode tok/s short / ~500 "
          "| peak RSS (MiB) | decode × raw short / ~500 | TTFT × raw ~500 / ~1,500 |")
    print("|---|---|---|---|---|---|---|---|")
    for kind, r in measured.items():
        ttft = " / ".join(f"{r[p]['ttft']:.2f}" for p in PROMPTS)
        print(f"| {kind} | {r.get('file', 'transformers')} | {r['prefill']:.0f} | {ttft} | {r['short']['tps']:.1f} / "
              f"{r['~500']['tps']:.1f} | {r['rss']:.0f} | {ratio(kind, 'tps', 'short')} / "
              f"{ratio(kind, 'tps', '~500')} | {ratio(kind, 'ttft', '~500')} / {ratio(kind, 'ttft', '~1500')} |")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "")
    print(f"\n{args.new_tokens} new tokens, greedy, {os.cpu_count()} threads, median of {args.repeats} runs, {cpu}. "
          f"command: python bench/chat_decode.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
