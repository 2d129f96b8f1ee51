"""Wrong passwords, counted per client address and across all of them.

Ten wrong passwords from one address within five minutes lock that address
out for the rest of the window; a few hundred across every address lock out
password checks for everyone (signed-in browsers keep working), so rotating
addresses buys nothing. The table of addresses is bounded: the oldest entry
goes, never the whole table.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

__all__ = ["FailureLimiter", "MAX_FAILS", "MAX_GLOBAL_FAILS", "WINDOW_S", "login_limiter"]

MAX_FAILS = 10  # wrong passwords per address ...
MAX_GLOBAL_FAILS = 300  # ... or across all addresses ...
WINDOW_S = 300.0  # ... within this many seconds, then 429 until it passes
MAX_ADDRESSES = 10_000


class FailureLimiter:
    def __init__(
        self,
        per_address: int = MAX_FAILS,
        overall: int = MAX_GLOBAL_FAILS,
        window_s: float = WINDOW_S,
        max_addresses: int = MAX_ADDRESSES,
    ) -> None:
        self.per_address, self.overall, self.window_s = per_address, overall, window_s
        self.max_addresses = max_addresses
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()
        self._all: deque[float] = deque(maxlen=overall)
        self._lock = threading.Lock()

    def _wait(self, q: deque[float], limit: int, now: float) -> float:
        while q and now - q[0] > self.window_s:
            q.popleft()
        return self.window_s - (now - q[0]) if len(q) >= limit else 0.0

    def blocked(self, addr: str) -> float:
        """Seconds this address must wait before its password is checked, or 0."""
        now = time.monotonic()
        with self._lock:
            overall = self._wait(self._all, self.overall, now)
            q = self._fails.get(addr)
            mine = self._wait(q, self.per_address, now) if q else 0.0
            return max(overall, mine)

    def fail(self, addr: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._all.append(now)
            q = self._fails.pop(addr, None) or deque(maxlen=self.per_address)
            q.append(now)
            self._fails[addr] = q  # most recent last
            while len(self._fails) > self.max_addresses:
                self._fails.popitem(last=False)

    def addresses(self) -> int:
        """How many addresses are remembered (bounded by ``max_addresses``)."""
        with self._lock:
            return len(self._fails)

    def reset(self, addr: str) -> None:
        with self._lock:
            self._fails.pop(addr, None)


login_limiter = FailureLimiter()  # one per process: the middleware and /login share it
