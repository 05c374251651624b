"""Rate limiting per channel: at most K messages per sliding window, the rest coalesced.

``RateLimiter`` counts messages actually sent in the last ``window_s`` seconds. ``Coalescer``
holds the events that arrive while the window is full and turns them into one summary message
("7 more events: 5 fill, 1 halt, 1 error" and their lines, halts and errors first) when a slot
frees. Both are pure: the caller passes the time, so tests need no sleeping.
"""

from __future__ import annotations

from collections import Counter, deque

from botclave_cli.live.alerts.events import AlertEvent

#: summary lines listed before "... and N more"; Telegram's limit is 4096 characters a message
SUMMARY_LINES = 20
_PRIORITY = {"halt": 0, "error": 1, "disconnect": 2, "fill": 3}


class RateLimiter:
    """At most ``limit`` messages in any ``window_s`` seconds (sliding window)."""

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("limit must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self._sent: deque[float] = deque()

    def _prune(self, now: float) -> None:
        while self._sent and self._sent[0] <= now - self.window_s:
            self._sent.popleft()

    def allow(self, now: float) -> bool:
        """True when one more message may go out at ``now``."""
        self._prune(now)
        return len(self._sent) < self.limit

    def record(self, now: float) -> None:
        """A message went out at ``now``."""
        self._sent.append(now)

    def next_free(self, now: float) -> float:
        """The earliest time >= ``now`` at which ``allow`` is true."""
        self._prune(now)
        if len(self._sent) < self.limit:
            return now
        return self._sent[len(self._sent) - self.limit] + self.window_s


class Coalescer:
    """Events held back by the rate limit (and events dropped on a full queue), summarised."""

    def __init__(self) -> None:
        self.held: list[AlertEvent] = []
        self.dropped = 0

    def __bool__(self) -> bool:
        return bool(self.held) or self.dropped > 0

    def hold(self, event: AlertEvent) -> None:
        self.held.append(event)

    def take(self, limit_note: str = "") -> str:
        """The summary text of everything held (cleared). One held event and nothing dropped
        is sent as itself."""
        held, dropped = self.held, self.dropped
        self.held, self.dropped = [], 0
        if len(held) == 1 and not dropped:
            return held[0].text
        counts = Counter(e.kind for e in held)
        kinds = ", ".join(f"{counts[k]} {k}" for k in sorted(counts, key=_rank))
        head = f"{len(held) + dropped} more events"
        if limit_note:
            head += f" ({limit_note})"
        head += f": {kinds}" if kinds else ""
        if dropped:
            head += f"{';' if kinds else ':'} {dropped} dropped (queue full)"
        ordered = sorted(held, key=lambda e: (_rank(e.kind), e.ts))
        lines = [head] + [e.text for e in ordered[:SUMMARY_LINES]]
        if len(ordered) > SUMMARY_LINES:
            lines.append(f"... and {len(ordered) - SUMMARY_LINES} more")
        return "\n".join(lines)


def _rank(kind: str) -> int:
    return _PRIORITY.get(kind, len(_PRIORITY))
