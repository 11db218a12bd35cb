"""The ratings file and its checks: concurrent sessions both land, kill -9 mid-append leaves a readable file, hand-broken
lines are skipped with their line number, and bad ratings are refused (never produced, another session's reply,
empty or 1 MB better answers). Run ``pytest tests/test_feedback_store.py -q``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from assistant.core.errors import InputError, UserError
from assistant.feedback.ratings import MAX_BETTER_CHARS, Feedback
from assistant.feedback.responses import ResponseLog
from assistant.feedback.store import FeedbackStore

REPO = Path(__file__).resolve().parents[1]


def _produce(feedback: Feedback, session: str, question: str = "What is LoRA?", reply: str = "A kind of radio."):
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": question}]
    return feedback.responses.remember(session, conversation, reply, model="tiny", adapter=None)


def test_a_rating_is_stored_with_its_context_and_a_rerating_replaces_it(tmp_path):
    feedback = Feedback(FeedbackStore(tmp_path))
    produced = _produce(feedback, "session:a", "LoRA 是什么？", "一种无线电。")
    feedback.rate(produced.id, "up", session="session:a")
    stored = feedback.rate(produced.id, "down", "LoRA 是一种低秩适配方法。", session="session:a")
    assert stored["language"] == "zh" and stored["model"] == "tiny" and stored["session"] == "session:a"
    assert stored["conversation"][-1] == {"role": "user", "content": "LoRA 是什么？"} and stored["reply"] == "一种无线电。"
    found = FeedbackStore(tmp_path).read()
    assert [r["rating"] for r in found.ratings] == ["down"] and found.skipped == []
    assert found.ratings[0]["better_answer"] == "LoRA 是一种低秩适配方法。"
    assert len((tmp_path / "feedback" / "ratings.jsonl").read_text().splitlines()) == 2  # appended, never rewritten
    assert feedback.clear(produced.id, session="session:a") and FeedbackStore(tmp_path).read().ratings == []


def test_two_sessions_rating_at_once_both_land(tmp_path):
    log = ResponseLog()
    sessions = {name: Feedback(FeedbackStore(tmp_path), log) for name in ("session:a", "session:b")}
    ids = {name: [_produce(f, name, f"question {i}", f"reply {name} {i}").id for i in range(40)]
           for name, f in sessions.items()}
    start = threading.Barrier(2)

    def rate_all(name):
        start.wait()
        for response_id in ids[name]:
            sessions[name].rate(response_id, "down", "x" * 5000 + name, session=name)  # long lines: more to tear

    threads = [threading.Thread(target=rate_all, args=(name,)) for name in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    found = FeedbackStore(tmp_path).read()
    assert found.skipped == []
    assert sorted(r["id"] for r in found.ratings) == sorted(ids["session:a"] + ids["session:b"])


def test_a_second_process_appending_at_the_same_time_loses_nothing(tmp_path):
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from assistant.feedback.store import FeedbackStore
        store = FeedbackStore({str(tmp_path)!r})
        for i in range(150):
            store.add({{"id": f"p-{{i}}", "rating": "up", "reply": "r" * 20000, "conversation": []}})
    """)
    other = subprocess.Popen([sys.executable, "-c", script])
    store = FeedbackStore(tmp_path)
    for i in range(150):
        store.add({"id": f"t-{i}", "rating": "down", "reply": "s" * 20000, "conversation": []})
    assert other.wait(timeout=60) == 0
    found = store.read()
    assert found.skipped == [] and len(found.ratings) == 300


def test_kill_9_during_appends_leaves_a_readable_file_and_the_next_append_lands(tmp_path):
    script = textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(REPO)!r})
        from assistant.feedback.store import FeedbackStore
        store = FeedbackStore({str(tmp_path)!r})
        i = 0
        while True:
            store.add({{"id": f"k-{{i}}", "rating": "up", "reply": "r" * 4_000_000, "conversation": []}})
            i += 1
    """)
    writer = subprocess.Popen([sys.executable, "-c", script])
    path = tmp_path / "feedback" / "ratings.jsonl"
    deadline = time.monotonic() + 30
    while not (path.is_file() and path.stat().st_size > 12_000_000) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    store = FeedbackStore(tmp_path)
    before = store.read()
    assert len(before.ratings) >= 2 and len(before.skipped) <= 1  # at most the line being written is torn
    assert all(line.startswith("line ") for line in before.skipped)
    store.add({"id": "after", "rating": "down", "reply": "fine", "conversation": []})
    after = store.read()
    assert after.ratings[-1]["id"] == "after" and len(after.ratings) == len(before.ratings) + 1
    assert after.skipped == before.skipped


def test_hand_broken_lines_are_skipped_with_their_line_number_and_kept_on_delete(tmp_path):
    store = FeedbackStore(tmp_path)
    for i in range(3):
        store.add({"id": f"r{i}", "rating": "up", "reply": "ok", "conversation": []})
    lines = store.path.read_text().splitlines()
    store.path.write_text("\n".join([lines[0], "{not json", lines[1], '{"id": "x", "rating": "meh", "reply": "", '
                                     '"conversation": []}', "[1, 2]", lines[2]]) + "\n")
    found = store.read()
    assert [r["id"] for r in found.ratings] == ["r0", "r1", "r2"]
    assert [s.split(":")[0] for s in found.skipped] == ["line 2", "line 4", "line 5"]
    assert "not valid JSON" in found.skipped[0] and "'up' or 'down'" in found.skipped[1]
    assert store.delete("r1") and not store.delete("r1")
    assert [r["id"] for r in store.read().ratings] == ["r0", "r2"]
    assert "{not json" in store.path.read_text()  # a hand edit can still be fixed


def test_bad_ratings_are_refused_with_the_fix(tmp_path):
    feedback = Feedback(FeedbackStore(tmp_path))
    produced = _produce(feedback, "session:a")
    with pytest.raises(InputError, match="was produced by this server recently"):
        feedback.rate("chat-" + "0" * 24, "up", session="session:a")
    with pytest.raises(InputError, match="not produced in this session"):  # a forged or other session
        feedback.rate(produced.id, "up", session="session:b")
    with pytest.raises(InputError, match="better answer is empty"):
        feedback.correct(produced.id, "   \n", session="session:a")
    with pytest.raises(InputError, match="limit is 20,000"):
        feedback.correct(produced.id, "x" * 1_000_000, session="session:a")
    with pytest.raises(InputError, match="same as the rated reply"):
        feedback.correct(produced.id, " A kind of  radio. ", session="session:a")
    with pytest.raises(InputError, match="'rating' must be 'up' or 'down'"):
        feedback.rate(produced.id, "sideways", session="session:a")
    with pytest.raises(InputError, match="goes with a thumbs-down"):
        feedback.rate(produced.id, "up", "Better.", session="session:a")
    with pytest.raises(InputError, match="'rating' must be text"):
        feedback.rate(produced.id, 5, session="session:a")
    assert FeedbackStore(tmp_path).read().ratings == []  # nothing was stored
    feedback.correct(produced.id, "y" * MAX_BETTER_CHARS, session="session:a")  # the limit itself is fine
    assert len(FeedbackStore(tmp_path).read().ratings) == 1


def test_the_file_is_never_written_outside_the_data_dir(tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    (data / "feedback").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UserError, match="outside the data dir"):
        FeedbackStore(data).add({"id": "a", "rating": "up", "reply": "r", "conversation": []})
    assert list(outside.iterdir()) == []


def test_replies_are_forgotten_past_the_capacity():
    log = ResponseLog(capacity=3)
    first = log.remember("s", [{"role": "user", "content": "q"}], "r0", "m")
    for i in range(3):
        log.remember("s", [{"role": "user", "content": "q"}], f"r{i + 1}", "m")
    assert log.get(first.id) is None and log.find("s", [{"role": "user", "content": "q"}], "r3") is not None


def test_an_append_after_a_torn_last_line_starts_a_fresh_line(tmp_path):
    store = FeedbackStore(tmp_path)
    store.add({"id": "whole", "rating": "up", "reply": "ok", "conversation": []})
    with store.path.open("a") as handle:
        handle.write('{"id": "torn", "rating": "do')  # what a crash mid-write leaves
    store.add({"id": "next", "rating": "down", "reply": "no", "conversation": []})
    found = store.read()
    assert [r["id"] for r in found.ratings] == ["whole", "next"] and found.skipped[0].startswith("line 2: not valid")
