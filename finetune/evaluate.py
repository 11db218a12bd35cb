"""Base model vs adapter on the validation split, with each task's own metric.

The generative path calls the same task module the app serves with (prompt, parser,
metric), so the numbers describe what a user of the adapter will see. The base numbers
come from the same model with the adapter switched off (``disable_adapter``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext

from finetune.encode import encode_packed_text, encode_supervised, prompt_and_target, task_module
from finetune.loop import validation_loss
from finetune.models import encode_head_examples, head_predict


def _perplexity(model, tokenizer, task, rows, options, max_len, batch_size) -> dict:
    if task == "unsupervised":
        examples = encode_packed_text(rows, tokenizer, max_len)
    else:
        examples = encode_supervised(task, rows, tokenizer, max_len, options)
    loss = validation_loss(model, examples, batch_size, tokenizer.pad_token_id)
    return {"loss": round(loss, 4), "perplexity": round(math.exp(min(loss, 50)), 3)}


def _generative_metrics(task, loaded, rows, options, batch_size) -> dict:
    module = task_module(task)
    if task == "classification":
        labels = options["labels"]
        predictions = []
        for row in rows:
            scores = module.label_scores(loaded, row["text"], labels)
            predictions.append(max(scores, key=scores.get))
        return module.evaluate(predictions, [row["label"] for row in rows])
    from assistant.core.generation import encode_messages, generate_batch

    pairs = [prompt_and_target(task, row, options) for row in rows]
    longest = max(len(loaded.tokenizer(t, add_special_tokens=False)["input_ids"]) for _, t in pairs)
    budget = min(longest + 16, 256)
    # Rows whose prompt cannot fit the context are left out (and counted), never a crash after training.
    fits = [len(encode_messages(loaded.tokenizer, p)) + budget <= loaded.context_window for p, _ in pairs]
    rows = [row for row, ok in zip(rows, fits) if ok]
    pairs = [pair for pair, ok in zip(pairs, fits) if ok]
    if not rows:
        return {"evaluated": 0, "skipped_too_long": len(fits)}
    prompts, targets = zip(*pairs)
    outputs = generate_batch(loaded, list(prompts), max_new_tokens=budget, batch_size=batch_size)
    return {**_score_outputs(task, module, outputs, rows, targets, options),
            "evaluated": len(rows), "skipped_too_long": fits.count(False)}


def _score_outputs(task, module, outputs, rows, targets, options) -> dict:
    if task == "ner":
        predicted = []
        for output, row in zip(outputs, rows):
            text, _ = module.join_tokens(row["tokens"])
            entities = module.parse_output(output, text, options["entity_types"])
            predicted.append(module.tags_from_entities(row["tokens"], entities))
        return module.evaluate(predicted, [row["tags"] for row in rows])
    if task == "translation":
        translations = [module.parse_output(output) for output in outputs]
        return module.evaluate(translations, list(targets), target_lang=options["target_lang"])
    return module.evaluate(list(outputs), list(targets))


def _head_metrics(task, model, tokenizer, rows, labels, max_len) -> dict:
    token_level = task == "ner"
    examples = encode_head_examples(rows, tokenizer, labels, token_level, max_len)
    predictions = head_predict(model, examples, tokenizer.pad_token_id)
    module = task_module(task)
    if token_level:
        # Words past --max-seq-len get no prediction; they count as "O", so the score stays honest
        # about what the adapter saw, and the report says how many sentences were cut.
        tagged = [[labels[i] for i in p] + ["O"] * (len(row["tags"]) - len(p)) for p, row in zip(predictions, rows)]
        cut = sum(len(p) < len(row["tags"]) for p, row in zip(predictions, rows))
        return {**module.evaluate(tagged, [row["tags"] for row in rows]), "truncated_sentences": cut}
    return module.evaluate([labels[i] for i, _ in predictions], [row["label"] for row in rows])


def base_vs_adapter(
    config, model, tokenizer, rows: list[dict], options: dict, loaded=None,
    on_status: Callable[[str], None] | None = None,
) -> dict:
    """{"base": metrics, "adapter": metrics} on ``rows`` (already limited to eval_limit)."""
    task = config.task
    results = {}
    for which in ("base", "adapter"):
        if on_status:
            on_status(f"Evaluating the {which} model on {len(rows)} validation rows")
        switch = model.disable_adapter() if which == "base" else nullcontext()
        with switch:
            if task in ("instruction", "unsupervised"):
                metrics = _perplexity(model, tokenizer, task, rows, options, config.max_seq_len, config.batch_size)
            elif config.resolved_approach == "head":
                # The base encoder has no trained head: its "base" numbers are the untrained head's.
                labels = options["labels"] if task == "classification" else options["tag_labels"]
                metrics = _head_metrics(task, model, tokenizer, rows, labels, config.max_seq_len)
            else:
                metrics = _generative_metrics(task, loaded, rows, options, config.batch_size)
        results[which] = metrics
    return results
