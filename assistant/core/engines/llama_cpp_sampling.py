"""Each llama.cpp request's own sampler chain, with the settings' meaning on the transformers engine.

    pytest tests/test_llama_cpp_engine.py -k "penalty or seeded"
"""

from __future__ import annotations

from assistant.core.engines.json_grammar import add_schema_grammar


def sampler_chain(lib, model, ids: list[int], settings, context_window: int):
    """A ``LlamaSampler`` for a reply to ``ids`` with ``settings`` (GenerationSettings) on ``model`` (a ``LlamaModel``).

    As in transformers, the repetition penalty covers every token of the prompt and the reply (not llama.cpp's
    default window of the last 64 generated), and temperature applies before top-k (50) and top-p. A
    ``json_schema`` allows only tokens that keep the reply valid JSON for it (llama.cpp's grammar sampler).
    """
    from llama_cpp._internals import LlamaSampler

    sampler = LlamaSampler()
    try:
        if settings.repetition_penalty != 1.0:
            sampler.add_penalties(model.n_vocab(), context_window, settings.repetition_penalty, 0.0, 0.0)
            for token in ids:
                sampler.accept(token)
        if settings.json_schema is not None:
            add_schema_grammar(sampler, model, settings.json_schema)
        if settings.temperature > 0:
            sampler.add_temp(settings.temperature)
            sampler.add_top_k(50)
            sampler.add_top_p(settings.top_p, 1)
            seed = settings.seed
            sampler.add_dist(lib.LLAMA_DEFAULT_SEED if seed is None else int(seed) & 0xFFFFFFFF)
        else:
            sampler.add_greedy()
    except BaseException:
        sampler.close()
        raise
    return sampler
