"""Reading OpenAI request bodies: messages, sampling settings, stop sequences, tools and tool calls.
Every problem is an ``ApiError`` (an OpenAI-style 400) naming the field. Used by ``assistant.openai_api``.
"""

from __future__ import annotations

import json
import secrets

from assistant.arguments import number_arg, text_arg
from assistant.chat import GenerationSettings
from assistant.core.errors import InputError

MAX_BODY_BYTES = 8 * 1024 * 1024
"""A request body (a 4096-token context holds about 16 KB of text; 256 embedding inputs fit easily)."""
MAX_BODY_DEPTH = 64
"""Objects and lists nested in a body (a tool's JSON schema may nest 32 deep, inside the request's own 5)."""
MAX_TOOLS = 64
"""Tools in one request; a required call's schema has one branch per tool (OpenAI allows 128)."""
DEFAULT_MAX_TOKENS = 256


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.param, self.code = status, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


def parse_body(raw: bytes) -> dict:
    """The JSON object of a request body, nested at most ``MAX_BODY_DEPTH`` deep (checked without recursion)."""
    try:
        body = json.loads(raw, parse_int=_whole_number)
    except RecursionError:
        raise ApiError(400, f"The request body nests lists or objects more than {MAX_BODY_DEPTH} deep.") from None
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    pending = [(body, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_BODY_DEPTH:
            raise ApiError(400, f"The request body nests lists or objects more than {MAX_BODY_DEPTH} deep.")
        children = node.values() if isinstance(node, dict) else node
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return body


def _whole_number(text: str) -> int | float:
    """A JSON integer; one of more than 30 digits becomes a float (inf past 1e308), which range checks refuse
    clearly, where Python would overflow converting it or refuse to read it (over 4300 digits)."""
    return int(text) if len(text) <= 30 else float(text)


def stop_sequences(value) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of up to 4 non-empty strings.", param="stop")
    return stops


def streams(body: dict) -> bool:
    """``stream``: true or false (absent or null: false). A string such as "yes" is refused, not read as true."""
    value = body.get("stream")
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ApiError(400, f"'stream' must be true or false; got {json.dumps(value)[:40]}.", param="stream")


MAX_CHOICES = 8


def choice_count(body: dict, allowed: bool = True) -> int:
    """``n``: how many choices to return (1 when absent). ``allowed`` False: the endpoint returns one choice only."""
    if body.get("n") is None:
        return 1
    try:
        count = number_arg(body["n"], "n", 1, MAX_CHOICES, integer=True)
    except InputError as exc:
        raise ApiError(400, f"{str(exc).rstrip('.')} (at most {MAX_CHOICES} choices per request).", param="n") from None
    if count > 1 and not allowed:
        raise ApiError(400, "'n' above 1 is supported by non-streamed /v1/chat/completions only: leave n out, or "
                            "send the request several times.", param="n")
    return count


def max_tokens(body: dict) -> int:
    """``max_completion_tokens`` or ``max_tokens`` (a whole number from 1), 256 when neither is given."""
    for name in ("max_completion_tokens", "max_tokens"):
        if body.get(name) is not None:
            try:
                return number_arg(body[name], name, 1, 8192, integer=True)
            except InputError as exc:
                raise ApiError(400, str(exc), param=name) from None
    return DEFAULT_MAX_TOKENS


def sampling(body: dict, json_schema: dict | None = None) -> GenerationSettings:
    """The generation settings of a request (also refuses max tokens below 1)."""
    tokens = max_tokens(body)
    try:
        return GenerationSettings(
            temperature=body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0,
            top_p=body.get("top_p", 1.0) if body.get("top_p") is not None else 1.0,
            max_new_tokens=tokens, repetition_penalty=1.0, seed=body.get("seed"), json_schema=json_schema)
    except InputError as exc:
        raise ApiError(400, str(exc)) from None


def tool_choice(body: dict):
    """``tool_choice``: "none", "auto", "required" or {"type": "function", "function": {"name": ...}}."""
    choice = body.get("tool_choice")
    if choice is None:
        return "auto"
    named = (isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("function"), dict)
             and isinstance(choice["function"].get("name"), str))
    if choice not in ("none", "auto", "required") and not named:
        raise ApiError(400, "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", "
                            "\"function\": {\"name\": \"<a tool's name>\"}}.", param="tool_choice")
    if (choice == "required" or named) and not body.get("tools"):
        raise ApiError(400, "'tool_choice' asks for a tool call, but the request has no 'tools'.", param="tool_choice")
    return choice


def tool_schema(tools, choice) -> tuple[dict | None, list[str]]:
    """(JSON schema a tool call must match, tool names) for ``tools`` and ``tool_choice``."""
    if not tools:
        return None, []
    if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("type") == "function"
                                              and isinstance(t.get("function"), dict)
                                              and isinstance(t["function"].get("name"), str)
                                              and isinstance(t["function"].get("parameters") or {}, dict)
                                              for t in tools):
        raise ApiError(400, "'tools' must be a list of {\"type\": \"function\", \"function\": {\"name\", "
                            "\"parameters\"}} objects (parameters: a JSON schema object).", param="tools")
    if len(tools) > MAX_TOOLS:
        raise ApiError(400, f"'tools' lists {len(tools)} tools; this server allows at most {MAX_TOOLS}.",
                       param="tools")
    functions = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in tools}
    if isinstance(choice, dict):
        name = choice["function"]["name"]
        if name not in functions:
            raise ApiError(400, f"tool_choice names {name!r}, which is not in 'tools'.", param="tool_choice")
        functions = {name: functions[name]}
    options = [{"type": "object", "properties": {"name": {"const": name}, "arguments": parameters},
                "required": ["name", "arguments"]} for name, parameters in functions.items()]
    return ({"anyOf": options} if len(options) > 1 else options[0]), list(functions)


def tools_prompt(tools: list, names: list[str]) -> str:
    described = "\n".join(f"- {t['function']['name']}: {t['function'].get('description', '')} parameters: "
                          f"{json.dumps(t['function'].get('parameters') or {})}" for t in tools
                          if t["function"]["name"] in names)
    return ('You can call one of these tools. Reply with a JSON object {"name": tool name, "arguments": {...}} '
            f"that calls the one that fits the request.\n{described}")


def chat_messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {\"role\", \"content\"} objects.", param="messages")
    clean = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant", "tool",
                                                                         "developer"):
            raise ApiError(400, f"messages[{index}] needs a role of system, user, assistant or tool.",
                           param="messages")
        try:
            content = text_arg(content_text(message.get("content"), index), f"messages[{index}].content")
        except InputError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        role = {"developer": "system", "tool": "user"}.get(message["role"], message["role"])
        clean.append({"role": role, "content": content})
    return clean


def content_text(content, index: int) -> str:
    """A message's text: a string, null, or a list of {"type": "text", "text": ...} parts (read without recursion,
    so content nested hundreds of lists deep is a clear error, not a crash)."""
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise InputError(f"messages[{index}].content must be text or a list of {{\"type\": \"text\", \"text\": ...}} "
                         "parts.")
    texts = []
    for number, part in enumerate(content):
        if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
            raise InputError(f"messages[{index}].content[{number}] must be a {{\"type\": \"text\", \"text\": ...}} "
                             "part: this model reads text only.")
        texts.append(part["text"])
    return "".join(texts)


def parse_call(text: str, names: list[str]) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("name") not in names or not isinstance(value.get("arguments"), dict):
        return None
    return {"id": f"call_{secrets.token_hex(8)}", "type": "function",
            "function": {"name": value["name"], "arguments": json.dumps(value["arguments"], ensure_ascii=False)}}
