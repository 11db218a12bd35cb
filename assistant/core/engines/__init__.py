"""Serving engines behind one small interface, so chat and the tasks never ask which one runs.

- ``LlamaCppEngine`` (``llama_cpp_engine``): llama-cpp-python on a GGUF file; the CPU engine.
- ``TransformersEngine`` (``transformers_engine``): a transformers model (bitsandbytes nf4 / int8 or
  float) with PEFT adapters; CUDA, models llama.cpp cannot load, training and evaluation.

Each engine offers, on token ids built by the model's Hugging Face tokenizer:

- ``decode(ids, settings, stop_event, on_token)``: sample one reply, a callback per token;
- ``greedy(prompts, max_new_tokens, stop)``: greedy replies (text) to several prompts;
- ``score(prompt_ids, continuations)``: summed log-probabilities of candidate continuations;
- ``adapter(info)``: a context in which a LoRA adapter (or none, for ``None``) is active.

Callers hold ``LoadedModel.lock`` around every call: one model, one computation at a time.
``assistant.core.loading.load_served_model`` picks the engine (``--engine auto|llama.cpp|transformers``).
"""
