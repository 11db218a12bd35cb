"""Learn from use, for real: 40 questions (20 English, 20 Chinese) asked through the app's ``/v1`` API, each reply
rated through ``POST /v1/feedback`` with one consistent preference ("answer in one sentence": a one-sentence
reply is rated up, a longer one down with a one-sentence better answer), then a KTO run on those ratings on the
default model, and replies before / after.

    python bench/feedback_kto.py rate  --work /tmp/fbk                 # app on a free port, 40 chats, 40 ratings
    python bench/feedback_kto.py train --work /tmp/fbk --max-steps 6   # KTO on the ratings (python -m finetune)
    python bench/feedback_kto.py compare --work /tmp/fbk               # base vs adapter on held-out questions

``rate`` leaves the ratings in ``WORK/data/feedback/ratings.jsonl`` (the app's own file); ``train`` builds the
KTO dataset as "Train on feedback" does (``assistant.feedback.dataset``) and prints the adapter's held-out
preference share (base vs adapter) from its metadata; ``compare`` prints greedy replies of the base and the
adapter (transformers, NF4) to questions not in the ratings, and the share of one-sentence replies.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODEL = "qwen2.5-coder-0.5b-instruct"
QUESTIONS = [
    ("What is LoRA?", "LoRA fine-tunes a model by training two small low-rank matrices per layer while the base weights stay frozen."),
    ("Why quantize a model to 4 bits?", "Four-bit weights take about an eighth of the memory of fp32, so a bigger model fits on a small machine."),
    ("What is a tokenizer?", "A tokenizer splits text into the sub-word pieces a model reads and maps each piece to an id."),
    ("What does the temperature setting do?", "Temperature scales the next-token probabilities: low values make replies predictable, high values varied."),
    ("What is overfitting?", "Overfitting is when a model memorises its training data and does worse on new data."),
    ("What is a context window?", "The context window is the most tokens a model can read and write in one request."),
    ("What is the capital of France?", "The capital of France is Paris."),
    ("How does a Transformer read a sentence?", "A Transformer reads all tokens at once and lets each attend to the others through self-attention."),
    ("What is BERT used for?", "BERT is an encoder used to understand text, for example to classify it or find entities in it."),
    ("What is fine-tuning?", "Fine-tuning trains a pretrained model a little further on your own data for your task."),
    ("What is an embedding?", "An embedding is a vector of numbers that places texts with similar meaning close together."),
    ("Why use a validation split?", "A validation split measures the model on data it did not train on, so you see overfitting early."),
    ("What is DPO?", "DPO trains a model to prefer the chosen answer over the rejected one of each pair, without a reward model."),
    ("What is GPU memory used for in training?", "GPU memory holds the weights, the activations, the gradients and the optimizer state."),
    ("What is Python?", "Python is a general-purpose programming language known for its readable syntax."),
    ("What does a learning rate control?", "The learning rate sets how big a step the optimizer takes on each update."),
    ("What is named-entity recognition?", "Named-entity recognition finds names of people, places and organisations in text."),
    ("Why is the sky blue?", "Air scatters blue sunlight more than red, so the sky looks blue."),
    ("What is a checkpoint?", "A checkpoint is a saved copy of the training state from which a run can resume."),
    ("What is zero-shot classification?", "Zero-shot classification labels text with classes the model was never trained on."),
    ("什么是 LoRA？", "LoRA 冻结基座模型，只为每层训练两个小的低秩矩阵。"),
    ("为什么要把模型量化到 4 位？", "4 位权重只占 fp32 约八分之一的内存，小机器也能装下更大的模型。"),
    ("什么是分词器？", "分词器把文本切成模型读取的子词片段，并把每个片段映射为编号。"),
    ("温度参数有什么作用？", "温度缩放下一个词的概率：低温回答稳定，高温回答多样。"),
    ("什么是过拟合？", "过拟合是模型记住了训练数据，在新数据上反而表现变差。"),
    ("什么是上下文窗口？", "上下文窗口是模型一次请求能读写的最多 token 数。"),
    ("中国的首都是哪里？", "中国的首都是北京。"),
    ("Transformer 如何理解一句话？", "Transformer 同时读入所有 token，并通过自注意力让每个 token 关注其他 token。"),
    ("BERT 用来做什么？", "BERT 是一个编码器，用于理解文本，例如文本分类或实体识别。"),
    ("什么是微调？", "微调是在预训练模型的基础上，用你自己的数据为任务再训练一小会儿。"),
    ("什么是向量表示（embedding）？", "向量表示是一组数字，让意思相近的文本在空间中彼此靠近。"),
    ("为什么需要验证集？", "验证集在模型没见过的数据上评估它，能及早发现过拟合。"),
    ("什么是 DPO？", "DPO 让模型在每对回答中更偏好被选中的那个，无需奖励模型。"),
    ("训练时显存用来存什么？", "显存存放权重、激活值、梯度和优化器状态。"),
    ("什么是 Python？", "Python 是一种以语法易读著称的通用编程语言。"),
    ("学习率控制什么？", "学习率决定优化器每次更新迈出的步子有多大。"),
    ("什么是命名实体识别？", "命名实体识别从文本中找出人名、地名和机构名。"),
    ("天空为什么是蓝色的？", "空气对蓝光的散射比红光强，所以天空看起来是蓝色的。"),
    ("什么是检查点？", "检查点是训练状态的保存副本，训练可以从它继续。"),
    ("什么是零样本分类？", "零样本分类用模型从未训练过的类别给文本打标签。"),
]
HELD_OUT = ["What is a GPU?", "什么是注意力机制？", "What is a large language model?", "什么是梯度下降？",
            "What is a learning-rate warm-up?", "什么是强化学习？"]


def one_sentence(text: str) -> bool:
    text = text.strip()
    if not text or "\n" in text:
        return False
    ends = re.findall(r"[.!?](?=\s|$)|[。！？]", text)
    return len(ends) <= 1 and len(text) <= 240


def rate(work: Path, max_tokens: int) -> None:
    import httpx

    from tests.app_server import running_app

    env = {"ASSISTANT_DATA_DIR": str(work / "data"), "ASSISTANT_MODEL": MODEL}
    with running_app(env=env, timeout=600) as url:
        began, counts = time.perf_counter(), {"up": 0, "down": 0}
        for question, better in QUESTIONS:
            reply = httpx.post(f"{url}v1/chat/completions", timeout=600, json={
                "model": MODEL, "temperature": 0, "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": question}]}).json()
            text = reply["choices"][0]["message"]["content"]
            verdict = {"id": reply["id"], "rating": "up"} if one_sentence(text) else \
                {"id": reply["id"], "rating": "down", "better_answer": better}
            stored = httpx.post(f"{url}v1/feedback", json=verdict, timeout=60)
            stored.raise_for_status()
            counts[verdict["rating"]] += 1
            print(f"{verdict['rating']:>4}  {question}  ->  {text[:100]!r}", flush=True)
    print(f"rated {len(QUESTIONS)} replies through /v1/feedback in {time.perf_counter() - began:.0f} s: {counts}")


def train(work: Path, max_steps: int, batch_size: int, max_seq_len: int, learning_rate: float,
          eval_limit: int) -> None:
    from assistant.feedback.dataset import plan_training, write_dataset
    from assistant.feedback.store import FeedbackStore

    found = FeedbackStore(work / "data").read()
    plan = plan_training(found.ratings, "kto")
    print(plan.reason)
    data = write_dataset(plan.rows, work / "feedback-kto.jsonl")
    command = [sys.executable, "-m", "finetune", "--method", "preference", "--preference-loss", "kto", "--data",
               str(data), "--base", MODEL, "--max-steps", str(max_steps), "--batch-size", str(batch_size),
               "--max-seq-len", str(max_seq_len), "--validation-split", "0.25", "--learning-rate", str(learning_rate),
               "--eval-limit", str(eval_limit), "--eval-every", str(max_steps), "--output", "feedback-kto",
               "--data-dir", str(work / "data")]  # one validation, at the end: each took ~7 min on a busy 2-core CPU
    began = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    meta = json.loads((work / "data" / "adapters" / "feedback-kto" / "metadata.json").read_text())
    print(f"trained {meta['steps']} steps in {time.perf_counter() - began:.0f} s; held-out "
          f"{meta['validation_rows']} rows: " + json.dumps(meta["metrics"], ensure_ascii=False))


def compare(work: Path, max_new_tokens: int, questions: int) -> None:
    import torch
    from peft import PeftModel

    from assistant.core.generation import encode_messages
    from assistant.core.loading import load_causal_lm

    loaded = load_causal_lm(MODEL, quant="nf4")
    model = PeftModel.from_pretrained(loaded.model, str(work / "data" / "adapters" / "feedback-kto"))
    model.eval()
    short = {"base": 0, "adapter": 0}
    for question in HELD_OUT[:questions]:
        ids = torch.tensor([encode_messages(loaded.tokenizer, [{"role": "user", "content": question}])])
        for which in ("base", "adapter"):
            context = model.disable_adapter() if which == "base" else torch.no_grad()
            with context, torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                     max_new_tokens=max_new_tokens)
            text = loaded.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip()
            short[which] += one_sentence(text)
            print(f"[{which}] {question}\n  {text!r}", flush=True)
    print(f"one-sentence replies to {min(questions, len(HELD_OUT))} new questions: base {short['base']}, adapter {short['adapter']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["rate", "train", "compare"])
    parser.add_argument("--work", type=Path, default=Path("/tmp/feedback-kto"))
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-seq-len", type=int, default=192)
    parser.add_argument("--eval-limit", type=int, default=12, help="train: held-out rows scored (a quarter is held out)")
    parser.add_argument("--questions", type=int, default=len(HELD_OUT), help="compare: how many new questions")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.phase == "rate":
        rate(args.work, args.max_tokens)
    elif args.phase == "train":
        train(args.work, args.max_steps, args.batch_size, args.max_seq_len, args.learning_rate, args.eval_limit)
    else:
        compare(args.work, args.max_tokens, args.questions)


if __name__ == "__main__":
    main()
