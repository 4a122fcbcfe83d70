"""Stand-ins for RTC engines, for the tests and the README's snippets (tests/test_readme.py).

`FakeAgoraConnection` behaves, for tokens, as an Agora RTC connection does (the shape of the
Agora Python Server SDK's `RTCConnection` and its observer): it holds the token it was given,
reads that token's expiry from the token itself, calls the observer's
`on_token_privilege_will_expire(conn, token)` `will_expire_lead` before that expiry (Agora: 30 s)
and `on_token_privilege_did_expire(conn)` at expiry, on its own threads. Holding an expired
token fails its stream: it counts the time and the failures.

`FakeWebSocket` stands in for an SFU/WebSocket connection that accepts an in-band re-auth.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import threading
from typing import Any, Callable, Optional

import tokenkeeper as tk

ERR_NOT_READY = -7  # Agora: the SDK is not ready for this call


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class FakeAgoraConnection:
    """An Agora-like RTC connection. Thread-safe; callbacks run on timer threads.

    `refuse_renewals`: the first N `renew_token` calls return `ERR_NOT_READY` (engine not ready).
    `late_report`: called with the previous token `late_report_delay` seconds after each renewal
    took effect (an engine that reports a stale token late).
    """

    def __init__(self, *, will_expire_lead: float = 30.0, refuse_renewals: int = 0,
                 late_report: Optional[Callable[[str], None]] = None, late_report_delay: float = 0.3) -> None:
        self.will_expire_lead = will_expire_lead
        self._refuse = refuse_renewals
        self._late_report = late_report
        self._late_delay = late_report_delay
        self._lock = threading.Lock()
        self._observers: list[Any] = []
        self._held: Optional[tuple[str, datetime.datetime]] = None
        self._timers: list[threading.Timer] = []
        self._late_timers: list[threading.Timer] = []
        self.connected = False
        self.channel_id: Optional[str] = None
        # What the engine saw.
        self.applied: list[str] = []        # every token it held, the join token first
        self.refused = 0                    # renew_token calls answered ERR_NOT_READY
        self.duplicates = 0                 # a token given twice
        self.expired_seconds = 0.0          # time it held an expired token
        self.stream_failures = 0            # tokens it still held when they expired
        self.will_expire_calls = 0
        self.did_expire_calls = 0

    # -- the engine's API ------------------------------------------------------------------------

    def register_observer(self, observer: Any) -> int:
        self._observers.append(observer)
        return 0

    def connect(self, token: str, channel_id: str, user_id: str) -> int:
        with self._lock:
            self.connected, self.channel_id = True, channel_id
            self._hold(token)
        return 0

    def renew_token(self, token: str) -> int:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                self.refused += 1
                return ERR_NOT_READY
            previous = self._held[0] if self._held else None
            self._hold(token)
        if self._late_report and previous:
            self._late_timers.append(self._start(self._late_delay, self._late_report, previous))
        return 0

    def disconnect(self) -> int:
        with self._lock:
            self._account(_now())
            self._cancel_timers()
            for timer in self._late_timers:
                timer.cancel()
            self._held, self.connected = None, False
        return 0

    # -- what an engine does by itself ------------------------------------------------------------

    def _hold(self, token: str) -> None:
        now = _now()
        self._account(now)
        if token in self.applied:
            self.duplicates += 1
        self.applied.append(token)
        expires_at = tk.inspect(token).expires_at
        self._held = (token, expires_at)
        self._cancel_timers()
        until_expiry = (expires_at - now).total_seconds()
        self._timers = [
            self._start(max(0.0, until_expiry - self.will_expire_lead), self._will_expire, token),
            self._start(max(0.0, until_expiry), self._did_expire, token),
        ]

    def _account(self, now: datetime.datetime) -> None:
        if self._held and now > self._held[1]:
            self.expired_seconds += (now - self._held[1]).total_seconds()

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers = []

    def _start(self, delay: float, fn: Callable[..., None], *args: Any) -> threading.Timer:
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        timer.start()
        return timer

    def _will_expire(self, token: str) -> None:
        with self._lock:
            if not self._held or self._held[0] != token:
                return
            self.will_expire_calls += 1
        for observer in self._observers:
            observer.on_token_privilege_will_expire(self, token)

    def _did_expire(self, token: str) -> None:
        with self._lock:
            if not self._held or self._held[0] != token:
                return
            self.did_expire_calls += 1
            self.stream_failures += 1
        for observer in self._observers:
            observer.on_token_privilege_did_expire(self)


class FakeWebSocket:
    """A WebSocket to an SFU that takes `{"type": "reauth", "token": …}` messages in-band."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.closed = False

    async def send(self, message: str) -> None:
        await asyncio.sleep(0)  # a real send yields to the loop
        if self.closed:
            raise ConnectionError("the WebSocket is closed")
        self.sent.append(json.loads(message))

    async def close(self) -> None:
        self.closed = True
