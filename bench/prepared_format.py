"""The shipped GGUF file against its prepared Q4_0 copy (``assistant.core.gguf.prepared``), raw llama.cpp.

    python bench/prepared_format.py                                   # both embedded chat models, Q4_0
    python bench/prepared_format.py --types Q4_0 IQ4_NL Q4_K_S --models smollm2-135m-instruct

Speed, each file in its own subprocess (one after another, so they do not share the cores): prefill
tokens/s and time to first token on ~500 and ~1,500-token prompts, decode tokens/s over 64 greedy tokens,
medians of ``--repeats`` runs. Quality, on held-out text the models were never tuned on here (the seed
document's Chinese, Multi30k's English test captions): perplexity of each file, and top-1 agreement, the
share of positions where the prepared copy's most likely next token is the shipped file's (teacher-forced,
so one early difference does not decide the rest).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from assistant.core.gguf.prepared import PREPARED_TYPE  # noqa: E402

SHARED = REPO.parent / "shared"
MODELS = ("qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct")
QUALITY_TOKENS = 512



def held_out_texts() -> dict[str, str]:
    seed = next((SHARED / "seed").glob("*.txt")).read_text(encoding="utf-8")
    english = (SHARED / "data" / "multi30k" / "test2016.en").read_text(encoding="utf-8").splitlines()
    return {"zh (seed document)": seed[2000:6000], "en (Multi30k test)": " ".join(english[:150])}


def candidate(name: str, type_name: str, folder: Path) -> Path:
    """The embedded model's file requantized to ``type_name`` (made once in ``folder``), or as shipped."""
    from assistant.core.engines.llama_cpp_engine import cpu_threads
    from assistant.core.gguf.prepared import quantize
    from assistant.core.model_sources import embedded_path

    shipped = embedded_path(name)
    if type_name == "shipped":
        return shipped
    target = folder / f"{name}-{type_name}.gguf"
    if not target.is_file():
        quantize(shipped, target, cpu_threads(), type_name)
    return target


def open_llama(path: Path, logits_all: bool = False):
    from llama_cpp import Llama

    from assistant.core.engines.llama_cpp_engine import cpu_threads

    return Llama(str(path), n_ctx=2048, n_batch=512, n_threads=cpu_threads(), n_threads_batch=cpu_threads(),
                 logits_all=logits_all, verbose=False)


def prompt_tokens(llm, count: int) -> list[int]:
    text = held_out_texts()["en (Multi30k test)"] * 4
    return llm.tokenize(text.encode(), add_bos=True)[:count]


def speed(path: Path, repeats: int) -> dict:
    llm = open_llama(path)
    result = {}
    for count in (500, 1500):
        ttfts = []
        for _ in range(repeats):
            llm.reset()
            began = time.perf_counter()
            llm.eval(prompt_tokens(llm, count))
            llm.sample(temp=0.0)
            ttfts.append(time.perf_counter() - began)
        result[f"ttft_{count}"] = statistics.median(ttfts)
        result[f"prefill_{count}"] = count / result[f"ttft_{count}"]
    rates = []
    for _ in range(repeats):
        llm.reset()
        llm.eval(prompt_tokens(llm, 32))
        began = time.perf_counter()
        for _ in range(64):
            llm.eval([llm.sample(temp=0.0)])
        rates.append(64 / (time.perf_counter() - began))
    result["decode"] = statistics.median(rates)
    return result


def log_probs(path: Path) -> dict[str, np.ndarray]:
    """Per text: the (positions x vocab) log-softmax of the next token."""
    llm, out = open_llama(path, logits_all=True), {}
    for name, text in held_out_texts().items():
        tokens = llm.tokenize(text.encode(), add_bos=True)[:QUALITY_TOKENS]
        llm.reset()
        llm.eval(tokens)
        scores = np.array(llm.scores[: len(tokens)], dtype=np.float64)
        scores -= scores.max(axis=1, keepdims=True)
        out[name] = (scores - np.log(np.exp(scores).sum(axis=1, keepdims=True)), np.array(tokens))
    return out


def quality(shipped: Path, prepared: Path) -> dict:
    """Perplexity of both files and their top-1 agreement, on each held-out text."""
    a, b = log_probs(shipped), log_probs(prepared)
    result = {}
    for name in a:
        (lp_a, tokens), (lp_b, _) = a[name], b[name]
        targets = tokens[1:]
        ppl = [float(np.exp(-lp[np.arange(len(targets)), targets].mean())) for lp in (lp_a[:-1], lp_b[:-1])]
        agree = float((lp_a.argmax(axis=1) == lp_b.argmax(axis=1)).mean())
        result[name] = {"ppl_shipped": ppl[0], "ppl_prepared": ppl[1], "top1_agreement": agree,
                        "tokens": len(tokens)}
    return result


def child(args) -> None:
    path = candidate(args.model, args.type, args.folder)
    if args.child == "quality":
        print(json.dumps(quality(candidate(args.model, "shipped", args.folder), path)))
    else:
        print(json.dumps(speed(path, args.repeats)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--types", nargs="+", default=[PREPARED_TYPE],
                        help="llama.cpp file types to requantize to and compare (e.g. Q4_0 IQ4_NL Q4_K_S)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--type", help=argparse.SUPPRESS)
    parser.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-prepared-") as folder:
        def run(model: str, what: str, type_name: str) -> dict:
            out = subprocess.run([sys.executable, __file__, "--child", what, "--model", model, "--type", type_name,
                                  "--folder", folder, "--repeats", str(args.repeats)],
                                 capture_output=True, text=True, check=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        print("| model | file | prefill tok/s ~500 | TTFT ~500 (s) | TTFT ~1,500 (s) | decode tok/s |")
        print("|---|---|---|---|---|---|")
        quality_rows = []
        for model in args.models:
            for type_name in ("shipped", *args.types):
                r = run(model, "speed", type_name)
                print(f"| {model} | {type_name} | {r['prefill_500']:.0f} | {r['ttft_500']:.2f} | "
                      f"{r['ttft_1500']:.2f} | {r['decode']:.1f} |", flush=True)
            quality_rows += [(model, type_name, run(model, "quality", type_name)) for type_name in args.types]
    print("\n| model | file | held-out text | tokens | perplexity shipped | perplexity this file | "
          "top-1 agreement with shipped |")
    print("|---|---|---|---|---|---|---|")
    for model, type_name, q in quality_rows:
        for text, r in q.items():
            print(f"| {model} | {type_name} | {text} | {r['tokens']} | {r['ppl_shipped']:.2f} | "
                  f"{r['ppl_prepared']:.2f} | {r['top1_agreement']:.1%} |")
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"\n{cpu}; median of {args.repeats}. command: python bench/prepared_format.py {' '.join(sys.argv[1:])}")


if __name__ == "__main__":
    main()
