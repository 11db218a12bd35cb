"""Reading OpenAI request bodies: messages, sampling settings, stop sequences, tools and tool calls.
Every problem is an ``ApiError`` (an OpenAI-style 400) naming the field. Used by ``assistant.openai_api``.
"""

from __future__ import annotations

import json
import secrets

from assistant.arguments import text_arg
from assistant.chat import GenerationSettings, message_text
from assistant.core.errors import InputError


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.kind, self.param, self.code = status, kind, param, code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.kind, "param": self.param, "code": self.code}}


def stop_sequences(value) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or len(stops) > 4 or not all(isinstance(s, str) and s for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of up to 4 non-empty strings.", param="stop")
    return stops


def sampling(body: dict, json_schema: dict | None = None) -> GenerationSettings:
    try:
        return GenerationSettings(
            temperature=body.get("temperature", 1.0) if body.get("temperature") is not None else 1.0,
            top_p=body.get("top_p", 1.0) if body.get("top_p") is not None else 1.0,
            max_new_tokens=body.get("max_tokens") or body.get("max_completion_tokens") or 256,
            repetition_penalty=1.0, seed=body.get("seed"), json_schema=json_schema)
    except InputError as exc:
        raise ApiError(400, str(exc)) from None


def tool_schema(tools, choice) -> tuple[dict | None, list[str]]:
    """(JSON schema a tool call must match, tool names) for ``tools`` and ``tool_choice``."""
    if not tools:
        return None, []
    if not isinstance(tools, list) or not all(isinstance(t, dict) and t.get("type") == "function"
                                              and isinstance(t.get("function"), dict)
                                              and isinstance(t["function"].get("name"), str) for t in tools):
        raise ApiError(400, "'tools' must be a list of {\"type\": \"function\", \"function\": {\"name\", "
                            "\"parameters\"}} objects.", param="tools")
    functions = {t["function"]["name"]: t["function"].get("parameters") or {"type": "object"} for t in tools}
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
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
            content = text_arg(message_text(message.get("content")), f"messages[{index}].content")
        except InputError as exc:
            raise ApiError(400, str(exc), param="messages") from None
        role = {"developer": "system", "tool": "user"}.get(message["role"], message["role"])
        clean.append({"role": role, "content": content})
    return clean


def parse_call(text: str, names: list[str]) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("name") not in names or not isinstance(value.get("arguments"), dict):
        return None
    return {"id": f"call_{secrets.token_hex(8)}", "type": "function",
            "function": {"name": value["name"], "arguments": json.dumps(value["arguments"], ensure_ascii=False)}}
