"""The agent's document-search tool over shared documents and a session's uploads (real MiniLM, real
Qdrant in memory).

    pytest tests/test_agent_docs.py -q
"""

from __future__ import annotations

import pytest

from assistant.agent import Agent
from assistant.agent_router import AgentRouter
from assistant.documents.answer import as_markdown_text as shown
from assistant.documents.index import DocumentIndex
from assistant.documents.router import DocsRouter
from assistant.faq.embeddings import default_encoder

pytestmark = pytest.mark.real
NOTES = ("# Course notes\n## Grading\nThe final project counts for forty percent of the course grade.\n"
         "## Office hours\nOffice hours are held on Thursday afternoons in room 204.\n")
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
    agent = Agent(None, AgentRouter(None, default_encoder()), None, DocsRouter(shared))
    reply, steps = agent.run("How long must a client wait after five failed password attempts?")
    assert [s.tool for s in steps] == ["docs"] and "thirty seconds" in reply
    assert f"Sources: {shown('manual.md')} ({shown('Manual > Passwords')})" in reply  # Markdown: document text escaped
    reply, steps = agent.run("According to the manual, how do I back up the studio?")  # the cue routes it
    assert steps[0].tool == "docs" and "copy the data folder" in reply


def test_without_shared_documents_the_docs_cue_is_ignored_and_unrelated_chat_is_not_routed(shared):
    plain = AgentRouter(None, None)
    assert plain.route("According to the manual, what is the weather?").tool != "docs"
    assert plain.route("hi, how are you today?", DocsRouter(shared)).tool is None


@pytest.fixture()
def uploads(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text(NOTES, "utf-8")
    index = DocumentIndex.in_memory(encoder=default_encoder())
    index.add_file(path)
    yield index
    index.close()


def test_a_sessions_uploads_are_searched_with_the_shared_documents(shared, uploads):
    agent = Agent(None, AgentRouter(None, default_encoder()), None, DocsRouter(shared))
    question = "How much of the course grade is the final project?"
    assert agent.route(question).tool is None  # the shared manual does not cover it
    reply, steps = agent.run(question, session_docs=uploads)
    assert [s.tool for s in steps] == ["docs"] and "forty percent" in reply
    assert f"Sources: {shown('notes.md')} ({shown('Course notes > Grading')})" in reply
    reply, _ = agent.run("How long must a client wait after five failed password attempts?", session_docs=uploads)
    assert "thirty seconds" in reply  # the shared documents are still searched


def test_without_shared_documents_a_session_with_uploads_still_gets_the_docs_tool(uploads):
    agent = Agent(None, AgentRouter(None, default_encoder()), None, None)
    assert agent.route("According to my notes, when are office hours?").tool is None  # no documents at all
    reply, steps = agent.run("According to my notes, when are office hours?", session_docs=uploads)
    assert steps[0].tool == "docs" and "Thursday afternoons" in reply
    step = agent.tool_step(agent.route("According to my notes, when are office hours?", uploads))
    assert not step.ok and "upload yours in the Ask tab" in step.output  # the tool itself without the uploads


def test_one_sessions_uploads_are_not_seen_by_another(shared, uploads):
    agent = Agent(None, AgentRouter(None, default_encoder()), None, DocsRouter(shared))
    other_session = DocumentIndex.in_memory(encoder=default_encoder())
    try:
        reply, steps = agent.run("According to my notes, how much does the final project count?",
                                 session_docs=other_session)
        assert "forty percent" not in reply and "notes.md" not in reply
    finally:
        other_session.close()


def test_document_text_reaches_the_chat_as_text(tmp_path):
    """An ``<img>`` (or a Markdown image) in a document must show as written in the chat, never load."""
    notes = tmp_path / "notes.md"
    notes.write_text("# Lab\n\nThe lab key code is 4711 <img src=http://example.invalid/x.png> "
                     "![x](http://example.invalid/y.png) and it opens the side door.\n", encoding="utf-8")
    index = DocumentIndex.in_memory(encoder=default_encoder())
    index.add_file(notes)
    reply = DocsRouter(index).route("What is the lab key code?")
    assert "4711" in reply and "<img" not in reply and "![" not in reply
    assert "&lt;img" in reply
