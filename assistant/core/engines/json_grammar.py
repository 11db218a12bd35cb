"""llama.cpp grammars that constrain a reply to JSON: a JSON Schema's (llama-cpp-python converts it)
or, for "any JSON object", a bounded grammar of the project's own.

    grammar = schema_grammar({"type": "object", "properties": {"city": {"type": "string"}}})
"""

from __future__ import annotations

from assistant.core.errors import UserError

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


def schema_grammar(schema: dict):
    """llama.cpp's GBNF grammar for a JSON Schema; InputError when llama.cpp cannot express the schema."""
    import json

    from llama_cpp import LlamaGrammar

    if schema == {"type": "object"}:
        return LlamaGrammar.from_string(FREE_OBJECT_GRAMMAR, verbose=False)
    try:
        return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as exc:  # an unsupported keyword, a $ref it cannot follow, a malformed schema
        raise UserError(f"The JSON schema cannot be used to constrain the reply ({type(exc).__name__}: "
                        f"{str(exc)[:200]}). Simplify it: objects, arrays, strings, numbers, enums.") from None
