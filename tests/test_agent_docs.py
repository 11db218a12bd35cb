"""The agent's document-search tool over shared documents (real MiniLM, real Qdrant in memory).

    pytest tests/test_agent_docs.py -q
"""

from __future__ import annotations

import pytest

from assistant.agent import Agent
from assistant.agent_router import AgentRouter
from assistant.documents.index import DocumentIndex
from assistant.documents.router import DocsRouter
from assistant.faq.embeddings import default_encoder

pytestmark = pytest.mark.real
MANUAL = ("# Manual\n## Passwords\nAfter five failed attempts a client must wait thirty seconds before trying again.\n"
          "## Backups\nTo back up the studio, copy the data folder while no training job is running.\n")


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    path = tmp_path_factory.mktemp("docs") / "manual.md"
    path.write_text(MANUAL, "utf-8")
    index = DocumentIndex.in_memory(encoder=default_encoder())
    index.add_file(path)
    return index


def test_a_question_the_documents_cover_is_routed_to_the_docs_tool_and_cites_them(shared):
    agent = Agent(None, AgentRouter(None, default_encoder(), DocsRouter(shared)), None, shared)
    reply, steps = agent.run("How long must a client wait after five failed password attempts?")
    assert [s.tool for s in steps] == ["docs"] and "thirty seconds" in reply
    assert "Sources: manual.md (Manual > Passwords)" in reply
    reply, steps = agent.run("According to the manual, how do I back up the studio?")  # the cue routes it
    assert steps[0].tool == "docs" and "copy the data folder" in reply


def test_without_shared_documents_the_docs_cue_is_ignored_and_unrelated_chat_is_not_routed(shared):
    plain = AgentRouter(None, None)
    assert plain.route("According to the manual, what is the weather?").tool != "docs"
    with_docs = AgentRouter(None, None, DocsRouter(shared))
    assert with_docs.route("hi, how are you today?").tool is None
