"""The operator password: throttled per client, logged as one line, right password clears the count."""

import logging

from assistant.ui.admin_lock import FREE_TRIES, AdminLock


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_wrong_passwords_wait_longer_and_longer_per_client(caplog):
    clock = Clock()
    lock = AdminLock("s3cret", clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(FREE_TRIES - 1):
            assert lock.check("guess", "10.0.0.1") == (False, "Wrong password: training and adapter management "
                                                               "stay locked.")
        ok, message = lock.check("guess", "10.0.0.1")
        assert not ok and message.endswith("Wait 2 s before the next try.")
    assert lock.check("s3cret", "10.0.0.1") == (False, "Too many wrong passwords from your address: try again in 3 s.")
    assert lock.check("s3cret", "10.0.0.2") == (True, "Unlocked.")  # another client is not slowed down
    clock.now += 2.5
    ok, message = lock.check("guess", "10.0.0.1")
    assert not ok and message.endswith("Wait 4 s before the next try.")
    clock.now += 4.5
    assert lock.check("s3cret", "10.0.0.1") == (True, "Unlocked.")
    assert lock.check("guess", "10.0.0.1")[1].endswith("stay locked.")  # the count started again
    lines = [r for r in caplog.records if r.name == "assistant.ui.admin_lock"]
    assert len(lines) == FREE_TRIES + 2 and all(r.exc_info is None for r in lines)
    assert all("guess" not in r.getMessage() for r in lines)


def test_odd_input_is_just_wrong():
    lock = AdminLock("s3cret")
    for given in (None, 42, "\ud800", "x" * 100_000):
        assert lock.check(given, "c")[0] is False
