"""Fine-tuning on real benchmark data: base vs adapter, wall time, training tokens/s, and the
project's loop vs a plain ``transformers.Trainer`` + ``peft`` loop on the same model and data.

    python bench/finetune_benchmark.py                    # every row (slow; pick rows with --only)
    python bench/finetune_benchmark.py --only sst2 trainer
    python bench/finetune_benchmark.py --only chnsenticorp       # Qwen2.5-Coder-0.5B QLoRA on Chinese sentiment

Data is read from ../shared/data at run time; subsets are written to a temporary folder
outside the project (some sets are research-only) and deleted afterwards; ``--keep-dir DIR`` (outside the
project) keeps them with the runs and adapters for ``bench/plots.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from finetune_data import (DATA, PeakRss, read_jsonl, write_chnsenticorp, write_conll, write_multi30k,  # noqa: E402
                           write_sst2)


def report(row: dict) -> dict:
    """Print a finished row at once (a long run still shows what it has) and return it."""
    print(f"| {row['row']} | {row['base']} | {row['adapter']} | {row['steps']} | {row['wall_s']:.0f} "
          f"| {row['train_tok_s']:.0f} |", flush=True)
    return row


def key_metric(metrics: dict) -> str:
    for key in ("accuracy", "f1", "bleu", "perplexity"):
        if key in metrics:
            extra = f", chrF {metrics['chrf']:.1f}" if "chrf" in metrics else ""
            extra += f", macro-F1 {metrics['macro_f1']:.3f}" if "macro_f1" in metrics else ""
            return f"{key} {metrics[key]:.3f}{extra}" if key != "bleu" else f"BLEU {metrics[key]:.1f}{extra}"
    return json.dumps(metrics)[:60]


def finetune_row(name: str, data_dir: Path, **fields) -> dict:
    from assistant.core.machine_settings import MachineSettings
    from finetune.config import FinetuneConfig
    from finetune.recipe import run
    from finetune.run_ids import new_run_id, run_folder

    config = FinetuneConfig(data_dir=str(data_dir), output=name, **fields)
    began = time.perf_counter()
    summary = run(config, run_folder(data_dir, new_run_id(config.task)), MachineSettings.from_env(), False)
    return {"row": name, "base": key_metric(summary.metrics["base"]), "adapter": key_metric(summary.metrics["adapter"]),
            "steps": summary.steps, "wall_s": time.perf_counter() - began, "train_tok_s": summary.tokens_per_second,
            "metrics": summary.metrics}


def _project_loop(fast_lora: str):
    def train_fn(model, examples, pad_id, steps, batch_size, run_dir: Path) -> tuple[float, int]:
        from finetune.loop import LoopSettings, train

        run_dir.mkdir(exist_ok=True)
        result = train(model, examples, [], LoopSettings(2e-4, batch_size, 1, steps, steps + 1, steps + 1, 0, fast_lora),
                       pad_id, run_dir)
        print(f"project loop, fast LoRA path: {result.fast_lora}", flush=True)
        return result.train_loss, result.tokens_processed

    return train_fn


def _train_with_trainer(model, examples, pad_id, steps, batch_size, output_dir: Path) -> tuple[float, int]:
    """The plain recipe: transformers.Trainer on the same PEFT model, examples and schedule."""
    import torch
    from transformers import Trainer, TrainingArguments

    from finetune.encode import collate

    class Rows(torch.utils.data.Dataset):
        def __len__(self):
            return len(examples)

        def __getitem__(self, i):
            return examples[i]

    args = TrainingArguments(output_dir=str(output_dir), per_device_train_batch_size=batch_size, max_steps=steps,
                             learning_rate=2e-4, logging_steps=1, save_strategy="no", report_to=[],
                             use_cpu=not torch.cuda.is_available(), warmup_steps=1, lr_scheduler_type="linear",
                             dataloader_num_workers=0, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=Rows(), data_collator=lambda b: collate(b, pad_id))
    output = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return (losses[-1] if losses else output.training_loss), sum(len(e["input_ids"]) for e in examples)


def _plain_peft_model(config, machine):
    """The recipe from the PEFT / bitsandbytes docs, without this project's CPU changes (same signature as
    ``finetune.models.build_generative``)."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    from assistant.core.loading import load_causal_lm
    from finetune.models import keep_4bit_layout_trainable, lora_config

    loaded = load_causal_lm(config.base, "nf4", machine.device, machine.trust_remote_code, machine.cache_dir)
    keep_4bit_layout_trainable(loaded.model)  # a correctness fix for this CPU, not a speed-up
    model = prepare_model_for_kbit_training(loaded.model, use_gradient_checkpointing=False)
    loaded.model = get_peft_model(model, lora_config(config, "CAUSAL_LM"))
    return loaded.model, loaded


def trainer_comparison(folder: Path, steps: int, batch_size: int) -> list[dict]:
    """Same model (SmolLM2 nf4 + LoRA r16, dropout 0.05), same encoded SST-2 examples, same steps:
    the project's model build and loop vs the plain PEFT recipe under transformers.Trainer.

    Both then score the same 64 held-out rows, so "same final loss" is checked on equal terms. On a CPU
    with bf16 instructions the project loop runs again with ``fast_lora="fp32"``: what a CPU without
    them gets.
    """
    import gc

    from assistant.core.machine_settings import MachineSettings
    from finetune.config import FinetuneConfig
    from finetune.cpu_lora import cpu_has_bf16
    from finetune.encode import encode_supervised
    from finetune.loop import validation_loss
    from finetune.models import build_generative

    train_path, _ = write_sst2(folder, batch_size * steps + 64, seed=1)
    rows = read_jsonl(train_path)
    rows, held_out_rows = rows[:batch_size * steps], rows[batch_size * steps:]
    config = FinetuneConfig(task="classification", data=str(train_path), base="smollm2-135m-instruct",
                            batch_size=batch_size, max_steps=steps)
    options = {"labels": ["negative", "positive"]}
    results = []
    loops = [("project loop", build_generative, _project_loop("auto"))]
    if cpu_has_bf16():
        loops.append(("project loop, fp32 (as on a CPU without bf16)", build_generative, _project_loop("fp32")))
    loops.append(("transformers.Trainer", _plain_peft_model, _train_with_trainer))
    for n, (which, build, train_fn) in enumerate(loops):
        with PeakRss() as rss:
            model, loaded = build(config, MachineSettings.from_env())
            pad_id = loaded.tokenizer.pad_token_id
            examples = encode_supervised("classification", rows, loaded.tokenizer, 256, options)
            began = time.perf_counter()
            final_loss, processed = train_fn(model, examples, pad_id, steps, batch_size, folder / f"loop{n}")
            seconds = time.perf_counter() - began
        held_out = encode_supervised("classification", held_out_rows, loaded.tokenizer, 256, options)
        results.append({"row": which, "tok_s": processed / seconds, "seconds": seconds, "final_loss": final_loss,
                        "held_out_loss": validation_loss(model, held_out, batch_size, pad_id),
                        "peak_rss_mib": rss.mib})
        del model, loaded
        gc.collect()
    return results


def time_to_quality(folder: Path, n_train: int, target: float, eval_every: int, max_epochs: int) -> dict:
    """Minutes of training (evaluation pauses excluded) until SST-2 dev accuracy reaches ``target``.

    The project's own path: MiniLM (4-bit NF4) + LoRA + classification head, the settings of the
    sst2 row; dev accuracy (all 872 sentences) is measured every ``eval_every`` steps.
    """
    import threading

    from assistant.core.machine_settings import MachineSettings
    from finetune.config import FinetuneConfig
    from finetune.loop import LoopSettings, steps_for, train
    from finetune.models import build_head, encode_head_examples, head_predict

    train_path, dev_path = write_sst2(folder, n_train, seed=0)
    train_rows, dev_rows = read_jsonl(train_path), read_jsonl(dev_path)
    labels = ["negative", "positive"]
    config = FinetuneConfig(task="classification", approach="head", base="minilm-l6-v2", data=str(train_path),
                            batch_size=32, learning_rate=1e-3, max_seq_len=96)
    model, tokenizer = build_head(config, labels, False, MachineSettings.from_env())
    train_examples = encode_head_examples(train_rows, tokenizer, labels, False, config.max_seq_len)
    dev_examples = encode_head_examples(dev_rows, tokenizer, labels, False, config.max_seq_len)
    total = steps_for(len(train_examples), config.batch_size, 1, max_epochs, 0)
    stop, curve, paused = threading.Event(), [], [0.0]

    def evaluate(record: dict) -> None:
        if record["step"] % eval_every and record["step"] != total:
            return
        began = time.perf_counter()
        predicted = head_predict(model, dev_examples, tokenizer.pad_token_id, batch_size=64)
        model.train()
        accuracy = sum(p == e["labels"] for (p, _), e in zip(predicted, dev_examples)) / len(dev_examples)
        curve.append((record["step"], record["seconds"] - paused[0], accuracy))
        paused[0] += time.perf_counter() - began
        if accuracy >= target:
            stop.set()

    with tempfile.TemporaryDirectory() as run_dir:
        train(model, train_examples, [], LoopSettings(config.learning_rate, config.batch_size, 1, total, total + 1,
                                                      total + 1, 0),
              tokenizer.pad_token_id, Path(run_dir), on_step=evaluate, stop_event=stop)
    reached = next(((step, seconds, acc) for step, seconds, acc in curve if acc >= target), None)
    return {"target": target, "reached": reached, "curve": curve, "total_steps": total, "train_rows": n_train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["sst2", "conll", "translation", "trainer", "quality"])
    parser.add_argument("--sst2-train", type=int, default=4000)
    parser.add_argument("--conll-train", type=int, default=3000)
    parser.add_argument("--conll-test", type=int, default=500)
    parser.add_argument("--m30k-train", type=int, default=1500)
    parser.add_argument("--m30k-test", type=int, default=100)
    parser.add_argument("--chnsenticorp-train", type=int, default=400)
    parser.add_argument("--chnsenticorp-dev", type=int, default=100)
    parser.add_argument("--quality-train", type=int, default=8000, help="SST-2 rows for the time-to-quality run")
    parser.add_argument("--quality-target", type=float, default=0.85)
    parser.add_argument("--keep-dir", help="write data, runs and adapters here and keep them (bench/plots.py reads "
                                           "the adapters); default: a temporary folder")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"benchmark data not found at {DATA}")
    rows, comparison, quality = [], [], None
    print("| run | base | adapter | steps | wall (s) | train tokens/s |\n|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.keep_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if "sst2" in args.only:
            train, dev = write_sst2(folder, args.sst2_train, seed=0)
            rows.append(report(finetune_row("sst2-minilm-head", folder, task="classification", approach="head",
                                     base="minilm-l6-v2", data=str(train), eval_data=str(dev), epochs=2,
                                     batch_size=32, learning_rate=1e-3, max_seq_len=96, eval_limit=872)))
        if "conll" in args.only:
            train, test = write_conll(folder, args.conll_train, args.conll_test)
            rows.append(report(finetune_row("conll-minilm-head", folder, task="ner", approach="head", base="minilm-l6-v2",
                                     data=str(train), eval_data=str(test), epochs=3, batch_size=16,
                                     learning_rate=1e-3, max_seq_len=128, eval_limit=args.conll_test,
                                     entity_types="PER,ORG,LOC,MISC")))
        if "translation" in args.only:
            train, test = write_multi30k(folder, args.m30k_train, args.m30k_test)
            rows.append(report(finetune_row("multi30k-en-de-smollm2-qlora", folder, task="translation",
                                     base="smollm2-135m-instruct", data=str(train), eval_data=str(test), epochs=1,
                                     batch_size=8, learning_rate=3e-4, max_seq_len=128, eval_limit=args.m30k_test,
                                     source_lang="en", target_lang="de")))
        if "chnsenticorp" in args.only:
            train, dev = write_chnsenticorp(folder, args.chnsenticorp_train, args.chnsenticorp_dev, seed=0)
            rows.append(report(finetune_row("chnsenticorp-qwen-qlora", folder, task="classification",
                                     base="qwen2.5-coder-0.5b-instruct", data=str(train), eval_data=str(dev),
                                     epochs=1, batch_size=8, learning_rate=2e-4, max_seq_len=192,
                                     eval_limit=args.chnsenticorp_dev, labels="负面,正面")))
        if "trainer" in args.only:
            comparison = trainer_comparison(folder, steps=20, batch_size=8)
        if "quality" in args.only:
            quality = time_to_quality(folder, args.quality_train, args.quality_target, eval_every=25, max_epochs=3)

    if comparison:
        ours, theirs = comparison[0], comparison[-1]
        print("\n| loop (SmolLM2-135M nf4 + LoRA r16, SST-2 SFT, batch 8, 20 steps) | tokens/s | seconds | final loss "
              "| held-out loss (64 rows) | peak RSS (MiB) |\n|---|---|---|---|---|---|")
        for r in comparison:
            print(f"| {r['row']} | {r['tok_s']:.0f} | {r['seconds']:.0f} | {r['final_loss']:.3f} | {r['held_out_loss']:.3f} "
                  f"| {r['peak_rss_mib']:.0f} |")
        print(f"\nthroughput ratio project/Trainer: {ours['tok_s'] / theirs['tok_s']:.2f}x")
        if len(comparison) == 3:
            print(f"throughput ratio project (fp32 fast path)/Trainer: {comparison[1]['tok_s'] / theirs['tok_s']:.2f}x")
    if quality:
        print(f"\n| SST-2 dev accuracy, MiniLM nf4 + LoRA + head ({quality['train_rows']} train rows, batch 32) "
              "| step | training minutes |\n|---|---|---|")
        for step, seconds, accuracy in quality["curve"]:
            print(f"| {accuracy:.3f} | {step} | {seconds / 60:.1f} |")
        reached = quality["reached"]
        print(f"\ntime to {quality['target']:.0%} dev accuracy: " + (
            f"{reached[1] / 60:.1f} min (step {reached[0]})" if reached else
            f"not reached in {quality['total_steps']} steps (best {max(a for _, _, a in quality['curve']):.3f})"))
    print(f"\nsubsets: SST-2 train first {args.sst2_train} of a seeded shuffle, full dev (872); CoNLL-2003 first "
          f"{args.conll_train} train / first {args.conll_test} test sentences; Multi30k first {args.m30k_train} "
          f"train / first {args.m30k_test} test2016 pairs; ChnSentiCorp train first {args.chnsenticorp_train} of a "
          f"seeded shuffle, dev first {args.chnsenticorp_dev}.\ncommand: python bench/finetune_benchmark.py "
          f"{' '.join(sys.argv[1:])}".rstrip())


if __name__ == "__main__":
    main()
