"""Ratings of replies this server produced: checked, turned into records, stored.

    feedback = Feedback(FeedbackStore(data_dir), ResponseLog())
    produced = feedback.responses.remember(session, conversation, reply, model="qwen", adapter=None)
    feedback.rate(produced.id, "down", session=session)               # the Chat tab's thumbs (own session only)
    feedback.rate(produced.id, "down", "A better answer.", session=session)
    feedback.rate("chatcmpl-...", "up")                                # the API: any id this server produced

A record holds the conversation up to the reply, the reply, the model and adapter that produced it, the
language (``zh`` or ``en``), the time (UTC), the session id or login name, and the better answer if one was
written. Refused with an ``InputError`` that says what to do: an id never produced here (or forgotten after
``responses.CAPACITY`` newer replies or a restart), a reply produced for another session, a rating that is
not up / down, an empty better answer or one over ``MAX_BETTER_CHARS``, a better answer with a thumbs-up.
Tests: ``pytest tests/test_feedback_store.py -q``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from assistant.arguments import text_arg
from assistant.core.errors import InputError
from assistant.core.language import chinese_or_english
from assistant.feedback.responses import Produced, ResponseLog
from assistant.feedback.store import RATINGS, FeedbackStore

MAX_BETTER_CHARS = 20_000
RATING_WORDS = {"up": "up", "down": "down", "like": "up", "dislike": "down", "good": "up", "bad": "down",
                "👍": "up", "👎": "down"}


def checked_rating(value) -> str:
    word = text_arg(value, "rating").strip().lower()
    if word not in RATING_WORDS:
        raise InputError(f"'rating' must be 'up' or 'down'; got {word[:20]!r}.")
    return RATING_WORDS[word]


def checked_better_answer(value, reply: str) -> str:
    text = text_arg(value, "better_answer").strip()
    if not text:
        raise InputError.keyed("feedback.better_empty")
    if len(text) > MAX_BETTER_CHARS:
        raise InputError.keyed("feedback.better_too_long", count=len(text), limit=MAX_BETTER_CHARS)
    if " ".join(text.split()) == " ".join(reply.split()):
        raise InputError.keyed("feedback.better_same")
    return text


class Feedback:
    def __init__(self, store: FeedbackStore, responses: ResponseLog | None = None):
        self.store = store
        self.responses = responses or ResponseLog()

    def produced(self, response_id, session: str | None = None) -> Produced:
        response_id = text_arg(response_id, "response_id").strip()
        found = self.responses.get(response_id) if response_id else None
        if found is None:
            raise InputError(f"No reply with id {response_id[:80]!r} was produced by this server recently: rate the "
                             "id of a reply it gave (the 'id' of a /v1 response), before a restart.")
        if session is not None and found.session != session:
            raise InputError.keyed("feedback.not_this_session")
        return found

    def rate(self, response_id, rating, better_answer=None, session: str | None = None, rated_by: str = "") -> dict:
        """Store a rating of ``response_id`` (a new record replaces an earlier rating of the same reply)."""
        produced = self.produced(response_id, session)
        rating = checked_rating(rating)
        better = None
        if better_answer not in (None, ""):  # "" is the API's "no better answer"
            if rating != "down":
                raise InputError("A better answer goes with a thumbs-down (rating 'down').")
            better = checked_better_answer(better_answer, produced.reply)
        return self.store.add(record(produced, rating, better, rated_by or produced.session))

    def correct(self, response_id, better_answer, session: str | None = None) -> dict:
        """Add a better answer to a reply (a thumbs-down with it)."""
        produced = self.produced(response_id, session)
        return self.store.add(record(produced, "down", checked_better_answer(better_answer, produced.reply),
                                     produced.session))

    def clear(self, response_id, session: str | None = None) -> bool:
        """Withdraw the rating of a reply (the thumb clicked again)."""
        return self.store.delete(self.produced(response_id, session).id)


def record(produced: Produced, rating: str, better: str | None, session: str) -> dict:
    if rating not in RATINGS:
        raise InputError(f"'rating' must be 'up' or 'down'; got {rating!r}.")
    last_user = next((m["content"] for m in reversed(produced.conversation) if m["role"] == "user"), "")
    return {"id": produced.id, "rating": rating, "better_answer": better, "conversation": list(produced.conversation),
            "reply": produced.reply, "model": produced.model, "adapter": produced.adapter,
            "language": chinese_or_english(last_user + "\n" + produced.reply), "source": produced.source,
            "session": session, "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
