"""Chat decode benchmark: the app's chat path in each precision vs plain ``model.generate``
and (when installed) llama.cpp on the same GGUF file, on a short and a ~500-token prompt.

    python bench/chat_decode.py                       # all rows, 64 new tokens, greedy
    python bench/chat_decode.py --precisions nf4 fp32 --new-tokens 32

Rows: ``plain`` is ``model.generate`` on the fp32 model; ``app`` is ``ChatEngine`` as the app
runs it (its default path: the fast decoder for nf4 / int8 on a CPU, ``generate`` otherwise);
``app-generate`` is ``ChatEngine(fast_decode=False)``, the path before the fast decoder.
Each row runs in its own subprocess (one after another) so peak RSS is that row's alone.
Reports time to first token (TTFT), decode tokens/s (after the first token), peak RSS, the
fast decoder's build time, and ratios to the plain fp32 baseline and to llama.cpp.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SHORT = "What is the capital of France? Answer in one sentence."
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
    return text + "\nSummarise the text above in two sentences."


def peak_rss_mib() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_row(kind: str, precision: str, new_tokens: int) -> dict:
    """Runs inside the subprocess: one configuration, both prompts."""
    import torch

    from assistant.chat import ChatEngine, GenerationSettings
    from assistant.loading import load_causal_lm

    torch.set_num_threads(os.cpu_count() or 1)
    results = {}
    if kind == "llama.cpp":
        from llama_cpp import Llama

        from assistant.model_sources import embedded_path

        llm = Llama(str(embedded_path("smollm2-135m-instruct")), n_threads=os.cpu_count(), n_ctx=2048,
                    verbose=False)
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(_converted_folder())
        for name, prompt in (("short", SHORT), ("long", long_prompt(tok))):
            began = time.perf_counter()
            first, count = None, 0
            for _ in llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=new_tokens,
                                                temperature=0, stream=True):
                count += 1
                first = first or time.perf_counter()
            end = time.perf_counter()
            results[name] = {"ttft": first - began, "tps": (count - 1) / max(end - first, 1e-9)}
        results["rss"] = peak_rss_mib()
        return results

    loaded = load_causal_lm("smollm2-135m-instruct", quant=precision)
    settings = GenerationSettings(temperature=0, max_new_tokens=new_tokens, repetition_penalty=1.0)
    engine = ChatEngine(loaded, fast_decode=kind != "app-generate")
    began = time.perf_counter()
    engine.prepare()  # builds the fast decoder when this row uses it
    results["build"] = time.perf_counter() - began if engine.uses_fast_decode() else None
    for name, prompt in (("short", SHORT), ("long", long_prompt(loaded.tokenizer))):
        engine.reply("Hi", settings=GenerationSettings(temperature=0, max_new_tokens=4))  # warm-up
        if kind == "plain":
            ids, _ = engine.prompt_ids(engine.conversation(prompt, [], ""), new_tokens)
            x = torch.tensor([ids])
            began = time.perf_counter()
            with torch.inference_mode():
                loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, do_sample=False)
            first = time.perf_counter()
            with torch.inference_mode():
                out = loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                            min_new_tokens=new_tokens, do_sample=False)
            end = time.perf_counter()
            produced = out.shape[1] - len(ids)
            ttft = first - began
            results[name] = {"ttft": ttft, "tps": (produced - 1) / max(end - first - ttft, 1e-9)}
        else:
            tokenizer = loaded.tokenizer
            began = time.perf_counter()
            first, text = None, ""
            for text in engine.stream(prompt, [], "", settings):
                first = first or time.perf_counter()
            end = time.perf_counter()
            produced = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            results[name] = {"ttft": first - began, "tps": max(produced - 1, 1) / max(end - first, 1e-9)}
    results["rss"] = peak_rss_mib()
    return results


def _converted_folder() -> str:
    from assistant.model_sources import resolve_model

    return resolve_model("smollm2-135m-instruct").location


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["nf4", "int8", "bf16", "fp32"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        kind, precision = args.row.split(":")
        print(json.dumps(run_row(kind, precision, args.new_tokens)))
        return

    rows = [("plain", "fp32")] + [("app", p) for p in args.precisions]
    rows += [("app-generate", p) for p in args.precisions if p in ("nf4", "int8")]
    try:
        import llama_cpp  # noqa: F401

        rows.append(("llama.cpp", "gguf-q4_1"))
    except ImportError:
        print("note: llama-cpp-python is not installed; the llama.cpp row is skipped "
              "(pip install llama-cpp-python to include it).", file=sys.stderr)
    measured = {}
    for kind, precision in rows:
        out = subprocess.run([sys.executable, __file__, "--row", f"{kind}:{precision}", "--new-tokens",
                              str(args.new_tokens)], capture_output=True, text=True,
                             env={**os.environ, "HF_HUB_OFFLINE": "1"})
        if out.returncode != 0:
            print(f"{kind}:{precision} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        measured[(kind, precision)] = json.loads(out.stdout.strip().splitlines()[-1])

    base = measured.get(("plain", "fp32"))
    ref = measured.get(("llama.cpp", "gguf-q4_1"))

    def ratio(r, other, prompt, key):
        return f"{r[prompt][key] / other[prompt][key]:.2f}" if other else "-"

    print("| path | precision | TTFT short (s) | TTFT ~500 tok (s) | decode tok/s short | decode tok/s long "
          "| peak RSS (MiB) | fast build (s) | decode × plain | decode × llama.cpp | TTFT ~500 × llama.cpp |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (kind, precision), r in measured.items():
        build = f"{r['build']:.2f}" if r.get("build") is not None else "-"
        print(f"| {kind} | {precision} | {r['short']['ttft']:.2f} | {r['long']['ttft']:.2f} | "
              f"{r['short']['tps']:.1f} | {r['long']['tps']:.1f} | {r['rss']:.0f} | {build} | "
              f"{ratio(r, base, 'long', 'tps')} | {ratio(r, ref, 'long', 'tps')} | {ratio(r, ref, 'long', 'ttft')} |")
    print(f"\n{args.new_tokens} new tokens, greedy, {os.cpu_count()} threads; ratios use the ~500-token prompt. "
          f"command: python bench/chat_decode.py {' '.join(sys.argv[1:])}".rstrip())

if __name__ == "__main__":
    main()
