"""Chat decode benchmark: the app's chat path in each precision vs plain ``model.generate``
and (when installed) llama.cpp on the same GGUF file, on a short and a ~500-token prompt.

    python bench/chat_decode.py                       # all rows, 64 new tokens, greedy
    python bench/chat_decode.py --precisions nf4 fp32 --new-tokens 32

Rows: ``plain`` is ``model.generate`` on the fp32 model; ``app`` is ``ChatEngine`` as the app
runs it (its default path on a CPU: the fast decoder, for nf4 on an int4 copy of the checkpoint,
for int8 on an int8 copy of the served weights; ``generate`` for bf16 / fp32); ``app-served``
is ``ChatEngine(fast_decode="served")`` (int8 of the NF4 weights, ``--fast-decode served``);
``app-generate`` is ``ChatEngine(fast_decode="off")``, the path before the fast decoder.
Each row runs in its own subprocess (one after another) so peak RSS is that row's alone.
Reports time to first token (TTFT), decode tokens/s (after the first token), each the median
of ``--repeats`` runs (the machine may be shared), peak RSS, the fast decoder's build time,
and ratios to the plain fp32 baseline and to llama.cpp.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

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


def run_row(kind: str, precision: str, new_tokens: int, repeats: int) -> dict:
    """Runs inside the subprocess: one configuration, both prompts, the median of ``repeats`` runs each."""
    import statistics

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    results = {}
    measure, tokenizer = _llama_cpp(precision, new_tokens) if kind == "llama.cpp" else \
        _transformers(kind, precision, new_tokens, results)
    for name, prompt in (("short", SHORT), ("long", long_prompt(tokenizer))):
        runs = [measure(prompt) for _ in range(repeats)]  # (ttft, tokens/s) each
        results[name] = {"ttft": statistics.median(r[0] for r in runs), "tps": statistics.median(r[1] for r in runs)}
    results["rss"] = peak_rss_mib()
    return results


def _llama_cpp(precision: str, new_tokens: int):
    from llama_cpp import Llama
    from transformers import AutoTokenizer

    from assistant.model_sources import embedded_path

    if precision.endswith(NO_AMX):
        _without_extra_buffer_types()
    llm = Llama(str(embedded_path("smollm2-135m-instruct")), n_threads=os.cpu_count(), n_ctx=2048, verbose=False)

    def measure(prompt: str, max_tokens: int = new_tokens) -> tuple[float, float]:
        llm.reset()  # no reuse of the previous run's KV cache: every run processes its whole prompt
        began = time.perf_counter()
        first, count = None, 0
        for chunk in llm.create_chat_completion([{"role": "user", "content": prompt}], max_tokens=max_tokens,
                                                temperature=0, stream=True):
            if chunk["choices"][0]["delta"].get("content"):  # not the role or the finish chunk
                count += 1
                first = first or time.perf_counter()
        end = time.perf_counter()
        return first - began, (count - 1) / max(end - first, 1e-9)

    measure("Hi", 4)  # warm-up, as the app rows get
    return measure, AutoTokenizer.from_pretrained(_converted_folder())


def _transformers(kind: str, precision: str, new_tokens: int, results: dict):
    import torch

    from assistant.chat import ChatEngine, GenerationSettings
    from assistant.loading import load_causal_lm

    loaded = load_causal_lm("smollm2-135m-instruct", quant=precision)
    settings = GenerationSettings(temperature=0, max_new_tokens=new_tokens, repetition_penalty=1.0)
    engine = ChatEngine(loaded, fast_decode={"app-generate": "off", "app-served": "served"}.get(kind, "auto"))
    began = time.perf_counter()
    engine.prepare()  # builds the fast decoder when this row uses it
    results["build"] = time.perf_counter() - began if engine.uses_fast_decode() else None
    engine.reply("Hi", settings=GenerationSettings(temperature=0, max_new_tokens=4))  # warm-up

    def measure_plain(prompt: str) -> tuple[float, float]:
        ids, _ = engine.prompt_ids(engine.conversation(prompt, [], ""), new_tokens)
        x = torch.tensor([ids])
        with torch.inference_mode():
            began = time.perf_counter()
            loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=1, do_sample=False)
            first = time.perf_counter()
            out = loaded.model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=new_tokens,
                                        min_new_tokens=new_tokens, do_sample=False)
            end = time.perf_counter()
        ttft = first - began
        return ttft, (out.shape[1] - len(ids) - 1) / max(end - first - ttft, 1e-9)

    def measure_app(prompt: str) -> tuple[float, float]:
        began = time.perf_counter()
        first, text = None, ""
        for text in engine.stream(prompt, [], "", settings):
            first = first or time.perf_counter()
        end = time.perf_counter()
        produced = len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
        return first - began, max(produced - 1, 1) / max(end - first, 1e-9)

    return (measure_plain if kind == "plain" else measure_app), loaded.tokenizer


NO_AMX = "-no-amx"


def _without_extra_buffer_types() -> None:
    """Keep llama.cpp off its AMX / repacked weight buffers (``use_extra_bufts = false``).

    Its AMX Q4_1 kernel dies with SIGILL on some virtual machines (``tilezero`` in a worker
    thread); Q4_1 has no other repacked layout, so only the Q8_0 embedding / output matrix
    loses its repacked GEMV. llama-cpp-python has no argument for it.
    """
    import llama_cpp.llama_cpp as bindings

    defaults = bindings.llama_model_default_params

    def params():
        value = defaults()
        value.use_extra_bufts = False
        return value

    bindings.llama_model_default_params = params


def _converted_folder() -> str:
    from assistant.model_sources import resolve_model

    return resolve_model("smollm2-135m-instruct").location


def _run_subprocess(kind: str, precision: str, args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, __file__, "--row", f"{kind}:{precision}", "--new-tokens",
                           str(args.new_tokens), "--repeats", str(args.repeats)],
                          capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precisions", nargs="+", default=["nf4", "int8", "bf16", "fp32"])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="runs per prompt; the table shows the median")
    parser.add_argument("--row", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        kind, precision = args.row.split(":")
        print(json.dumps(run_row(kind, precision, args.new_tokens, args.repeats)))
        return

    rows = [("plain", "fp32")] + [("app", p) for p in args.precisions]
    rows += [("app-served", "nf4")] if "nf4" in args.precisions else []
    rows += [("app-generate", p) for p in args.precisions if p in ("nf4", "int8")]
    try:
        import llama_cpp  # noqa: F401

        rows.append(("llama.cpp", "gguf-q4_1"))
    except ImportError:
        print("note: llama-cpp-python is not installed; the llama.cpp row is skipped "
              "(pip install llama-cpp-python to include it).", file=sys.stderr)
    measured = {}
    for kind, precision in rows:
        out = _run_subprocess(kind, precision, args)
        if kind == "llama.cpp" and out.returncode == -signal.SIGILL:
            print("note: llama.cpp's AMX kernels hit an illegal instruction here; rerunning it without AMX.",
                  file=sys.stderr)
            precision += NO_AMX
            out = _run_subprocess(kind, precision, args)
        if out.returncode != 0:
            print(f"{kind}:{precision} failed:\n{out.stderr[-2000:]}", file=sys.stderr)
            continue
        measured[(kind, precision)] = json.loads(out.stdout.strip().splitlines()[-1])

    base = measured.get(("plain", "fp32"))
    ref = next((r for (kind, _), r in measured.items() if kind == "llama.cpp"), None)

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
    print(f"\n{args.new_tokens} new tokens, greedy, {os.cpu_count()} threads, median of {args.repeats} runs; "
          "ratios use the ~500-token prompt. "
          f"command: python bench/chat_decode.py {' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
