"""Chat decode benchmark: the app's chat path against raw llama-cpp-python on the same GGUF file and
plain fp32 ``generate``, on a short and a ~500-token prompt, in one run.

    python bench/chat_decode.py                      # all rows, 64 new tokens, greedy, median of 3
    python bench/chat_decode.py --new-tokens 32 --repeats 5 --rows app llama.cpp

Rows (each in its own subprocess, one after another, so peak RSS is that row's alone):

- ``llama.cpp``: raw ``Llama.generate`` on the embedded SmolLM2 GGUF, the baseline;
- ``app``: ``ChatEngine`` as the app serves (``load_served_model``, engine auto: llama.cpp);
- ``app+adapter``: the same with a rank-16 all-linear LoRA adapter picked for the request (random
  weights of a trained adapter's shape, converted to GGUF LoRA as the app does);
- ``app-transformers``: ``--engine transformers`` (bitsandbytes NF4 ``generate``), the old CPU path;
- ``plain``: ``model.generate`` on the fp32 transformers model.

Every run processes its whole prompt (the KV cache is dropped first), greedy, no repetition penalty.
Reports time to first token (TTFT; for the app rows the first text a user sees, which the streamer
releases word by word), decode tokens/s after it (the app rows count the reply's tokens), medians,
peak RSS, and ratios to raw llama.cpp.
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

ROWS = ("llama.cpp", "app", "app+adapter", "app-transformers", "plain")
# Both prompts ask for more than the 64 measured tokens, so every row decodes the same count.
SHORT = "Write a short story about a robot who learns to paint."
LONG_CONTEXT = (
    "Fine-tuning adapts a pretrained language model to a task. Supervised fine-tuning uses labelled "
    "pairs; unsupervised fine-tuning continues pre-training on raw domain text; semi-supervised "
    "fine-tuning trains on a few labels and pseudo-labels the rest. LoRA trains small low-rank "
    "matrices beside frozen weights, and QLoRA keeps the frozen base in 4-bit NF4. "
)


def long_prompt(tokenizer, target_tokens: int = 500) -> str:
    text = ""
    while len(tokenizer(text)["input_ids"]) < target_tokens:
        text += LONG_CONTEXT
    return text + "\nExplain the text above to a beginner, step by step, in detail."


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(tokens) -> tuple[float, float]:
    """(TTFT, decode tokens/s after the first) of an iterator of produced tokens or texts."""
    began = time.perf_counter()
    first, count = None, 0
    for _ in tokens:
        count += 1
        first = first or time.perf_counter()
    end = time.perf_counter()
    return first - began, (count - 1) / max(end - first, 1e-9)


def random_adapter(data_dir: Path) -> str:
    """A rank-16 LoRA on every linear layer of the embedded model, saved as a trained one would be."""
    import torch
    from peft import LoraConfig, get_peft_model

    from assistant.core.loading import load_causal_lm
    from finetune.adapters import AdapterStore, write_metadata

    torch.manual_seed(0)
    base = load_causal_lm("smollm2-135m-instruct", quant="fp32").model
    peft = get_peft_model(base, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                           init_lora_weights=False))
    with torch.no_grad():
        for name, weight in peft.named_parameters():
            if "lora_B" in name:
                weight.mul_(0.01)  # a trained adapter's size of update, not a random rewrite of the model
    staging = AdapterStore(data_dir / "adapters").staging("bench-lora")
    with staging as folder:
        peft.save_pretrained(folder)
        write_metadata(folder, {"task": "instruction", "base_model": "smollm2-135m-instruct",
                                "kind": "causal-lm-lora", "prompt_version": 1, "prompt_format": "chat",
                                "hyperparameters": {"r": 16}, "data_fingerprint": "none",
                                "metrics": {"base": {}, "adapter": {}}})
    return staging.info.name


def run_row(kind: str, new_tokens: int, repeats: int, data_dir: Path) -> dict:
    """Runs inside the subprocess: one row, both prompts, the median of ``repeats`` runs each."""
    import torch

    from assistant.chat import ChatEngine, GenerationSettings
    from assistant.core.loading import load_causal_lm, load_served_model

    torch.set_num_threads(os.cpu_count() or 1)
    greedy = GenerationSettings(temperature=0, max_new_tokens=new_tokens, repetition_penalty=1.0)
    results = {}
    if kind == "llama.cpp":
        from llama_cpp import Llama

        from assistant.core.engines.llama_cpp_engine import cpu_threads
        from assistant.core.model_sources import embedded_path, gguf_tokenizer
        from assistant.core.generation import encode_messages

        path = embedded_path("smollm2-135m-instruct")
        tokenizer = gguf_tokenizer(path)
        llm = Llama(str(path), n_ctx=8192, n_threads=cpu_threads(), n_threads_batch=cpu_threads(), verbose=False)

        def measure(prompt):
            ids = encode_messages(tokenizer, [{"role": "user", "content": prompt}])
            llm.reset()

            def tokens():
                for i, token in enumerate(llm.generate(ids, temp=0.0, top_k=50, top_p=1.0, min_p=0.0,
                                                       repeat_penalty=1.0)):
                    yield token
                    if i + 1 >= new_tokens:
                        return
            return timed(tokens())
    elif kind == "plain":
        loaded = load_causal_lm("smollm2-135m-instruct", quant="fp32")
        tokenizer, engine = loaded.tokenizer, ChatEngine(loaded)

        def measure(prompt):
            ids, _ = engine.prompt_ids(engine.conversation(prompt, [], ""), new_tokens)
            x = torch.tensor([ids])
            with torch.inference_mode():
                began = time.perf_counter()
                loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, do_sample=False)
                ttft = time.perf_counter() - began
                began = time.perf_counter()
                loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                      min_new_tokens=new_tokens, do_sample=False)
                total = time.perf_counter() - began
            return ttft, (new_tokens - 1) / max(total - ttft, 1e-9)
    else:
        from assistant.adapter_runtime import AdapterRuntime
        from finetune.adapters import AdapterStore

        adapter = "bench-lora" if kind == "app+adapter" else None
        loaded = load_served_model("smollm2-135m-instruct", engine="transformers" if kind == "app-transformers"
                                   else "auto")
        results["engine"] = loaded.engine_name
        runtime = AdapterRuntime(loaded, AdapterStore(data_dir / "adapters"), "smollm2-135m-instruct")
        engine, tokenizer = ChatEngine(loaded, runtime), loaded.tokenizer
        engine.reply("Hi", settings=GenerationSettings(temperature=0, max_new_tokens=4), adapter=adapter)

        def measure(prompt):
            if hasattr(loaded.engine, "llm"):
                loaded.engine.llm.reset()  # no reuse of the previous run's KV cache
            began = time.perf_counter()
            first, text = None, ""
            for text in engine.stream(prompt, [], "", greedy, adapter=adapter):  # text arrives word by word
                first = first or time.perf_counter()
            end = time.perf_counter()
            produced = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            return first - began, (produced - 1) / max(end - first, 1e-9)

    measure("Hi")  # warm-up
    for name, prompt in (("short", SHORT), ("long", long_prompt(tokenizer))):
        runs = [measure(prompt) for _ in range(repeats)]
        results[name] = {"ttft": statistics.median(r[0] for r in runs), "tps": statistics.median(r[1] for r in runs)}
    results["rss"] = peak_rss_mib()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="runs per prompt; the table shows the median")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row == "make-adapter":
        random_adapter(args.data_dir)
        return
    if args.row:
        print(json.dumps(run_row(args.row, args.new_tokens, args.repeats, args.data_dir)))
        return
    measured = {}
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as data_dir:
        rows = (["make-adapter"] if "app+adapter" in args.rows else []) + args.rows
        for kind in rows:  # the adapter is made in a process of its own: it loads the fp32 model
            out = subprocess.run([sys.executable, __file__, "--row", kind, "--new-tokens", str(args.new_tokens),
                                  "--repeats", str(args.repeats), "--data-dir", data_dir], capture_output=True,
                                 text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if out.returncode != 0:
                print(f"{kind} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            elif kind != "make-adapter":
                measured[kind] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = measured.get("llama.cpp")

    def ratio(r, prompt, key):
        return f"{r[prompt][key] / ref[prompt][key]:.2f}" if ref else "-"

    print("| path | engine | TTFT short (s) | TTFT ~500 tok (s) | decode tok/s short | decode tok/s ~500 "
          "| peak RSS (MiB) | decode × llama.cpp short / ~500 | TTFT ~500 × llama.cpp |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, r in measured.items():
        engine = r.get("engine", "llama.cpp" if kind == "llama.cpp" else "transformers")
        print(f"| {kind} | {engine} | {r['short']['ttft']:.2f} | {r['long']['ttft']:.2f} | {r['short']['tps']:.1f} | "
              f"{r['long']['tps']:.1f} | {r['rss']:.0f} | {ratio(r, 'short', 'tps')} / {ratio(r, 'long', 'tps')} | "
              f"{ratio(r, 'long', 'ttft')} |")
    print(f"\n{args.new_tokens} new tokens, greedy, {os.cpu_count()} threads, median of {args.repeats} runs. "
          f"command: python bench/chat_decode.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
