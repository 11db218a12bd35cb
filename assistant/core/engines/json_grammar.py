"""llama.cpp grammars that constrain a reply to JSON: a JSON Schema's (llama-cpp-python converts it)
or, for "any JSON object", a bounded grammar of the project's own.

    grammar = schema_grammar({"type": "object", "properties": {"city": {"type": "string"}}})

Every schema passes ``json_schema_limits.check_schema`` first, and the grammar is cached by the
schema's text: a caller (the ``/v1`` API) builds it before it waits for the model lock, so the
engine, holding the lock, finds it ready. ``add_schema_grammar`` refuses a grammar llama.cpp cannot
parse (llama-cpp-python would add a null sampler, and sampling would crash the process).
"""

from __future__ import annotations

import json
from functools import lru_cache

from assistant.core.engines.json_schema_limits import MAX_GRAMMAR_CHARS, check_schema
from assistant.core.errors import InputError

FREE_OBJECT_GRAMMAR = r'''
root   ::= "{" ws ( pair ( ws "," ws pair ){0,7} )? ws "}"
pair   ::= string ws ":" ws value
value  ::= string | number | "true" | "false" | "null"
string ::= "\"" ( [^"\\\x00-\x1f] | "\\" ["\\/bfnrt] ){0,200} "\""
number ::= "-"? [0-9]{1,15} ( "." [0-9]{1,10} )?
ws     ::= [ \t\n]{0,4}
'''
"""Any JSON object, bounded (8 flat members, 200-character strings): a small model that loops on
keys still closes the object within a few hundred tokens, so the reply is valid JSON."""

_SIMPLIFY = "Simplify it: objects, arrays, strings, numbers, enums."


def schema_grammar(schema: dict):
    """llama.cpp's GBNF grammar for a JSON Schema; InputError when the schema is over a limit or llama-cpp-python
    cannot express it."""
    check_schema(schema)
    return _grammar_for(json.dumps(schema))  # not sorted: the grammar keeps the properties in the schema's order


@lru_cache(maxsize=32)
def _grammar_for(schema_text: str):
    from llama_cpp import LlamaGrammar
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    if json.loads(schema_text) == {"type": "object"}:
        return LlamaGrammar.from_string(FREE_OBJECT_GRAMMAR, verbose=False)
    try:
        text = json_schema_to_gbnf(schema_text)
    except Exception as exc:  # an unsupported keyword, a $ref it cannot follow, a malformed schema
        raise InputError(f"The JSON schema cannot be used to constrain the reply ({type(exc).__name__}: "
                         f"{str(exc)[:200]}). {_SIMPLIFY}") from None
    if len(text) > MAX_GRAMMAR_CHARS:
        raise InputError(f"The JSON schema makes a grammar of {len(text)} characters; this server allows at most "
                         f"{MAX_GRAMMAR_CHARS}. {_SIMPLIFY}")
    return LlamaGrammar.from_string(text, verbose=False)


def add_schema_grammar(sampler, model, schema: dict) -> None:
    """Add the grammar of ``schema`` to a llama-cpp-python ``LlamaSampler`` chain for ``model`` (a ``LlamaModel``)."""
    import llama_cpp

    grammar = schema_grammar(schema)
    parsed = llama_cpp.llama_sampler_init_grammar(model.vocab, grammar._grammar.encode("utf-8"),
                                                  grammar._root.encode("utf-8"))
    if not parsed:
        raise InputError(f"llama.cpp could not parse the grammar of this JSON schema (it repeats too much or nests "
                         f"too deeply). {_SIMPLIFY}")
    llama_cpp.llama_sampler_chain_add(sampler.sampler, parsed)
