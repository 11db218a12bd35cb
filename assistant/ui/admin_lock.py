"""The operator password check, throttled per client.

After ``FREE_TRIES`` wrong passwords from one address, each further try must wait twice as long as
the last (2 s, 4 s, 8 s ... up to 10 minutes); a try inside the wait is refused without being
checked. A wrong password is logged as one line (address and count), never with a traceback, and
never with the password. A right password clears the address's count.

    lock = AdminLock("s3cret")
    ok, message = lock.check("guess", client="203.0.113.5")
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

FREE_TRIES = 3
MAX_WAIT_S = 600.0


class AdminLock:
    def __init__(self, password: str, clock: Callable[[], float] = time.monotonic):
        self._password = password.encode("utf-8", "surrogatepass")
        self._clock = clock
        self._failures: dict[str, tuple[int, float]] = {}  # client -> (wrong tries, not before)
        self._lock = threading.Lock()

    def check(self, given, client: str) -> tuple[bool, str]:
        """(unlocked, message for the person at ``client``)."""
        now = self._clock()
        with self._lock:
            count, not_before = self._failures.get(client, (0, 0.0))
            if now < not_before:
                return False, (f"Too many wrong passwords from your address: try again in "
                               f"{int(not_before - now) + 1} s.")
            given_bytes = given.encode("utf-8", "surrogatepass") if isinstance(given, str) else b""
            if hmac.compare_digest(given_bytes, self._password):
                self._failures.pop(client, None)
                return True, "Unlocked."
            count += 1
            wait = 0.0 if count < FREE_TRIES else min(MAX_WAIT_S, 2.0 ** (count - FREE_TRIES + 1))
            self._failures[client] = (count, now + wait)
            if len(self._failures) > 10_000:  # bounded memory under a flood from many addresses
                self._failures.pop(next(iter(self._failures)))
        log.warning("wrong operator password from %s (%d in a row)", client, count)
        later = f" Wait {int(wait)} s before the next try." if wait else ""
        return False, f"Wrong password: training and adapter management stay locked.{later}"
