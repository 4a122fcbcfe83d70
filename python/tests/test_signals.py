"""What the app and the engine tell a session (expired, rejected, resumed, network back), the
replaying status iterator, listeners that raise, and the Python helpers (async sink, logging)."""

from __future__ import annotations

import asyncio
import datetime
import logging
import threading
import time
from typing import Callable, Optional

import pytest

import tokenkeeper as tk
from conftest import PythonHttpSource, spec

SECOND = datetime.timedelta(seconds=1)


class Scripted(tk.TokenSource):
    """Tokens `tok-1`, `tok-2`, … living 10 minutes; `script(n)` may raise or stall attempt n."""

    def __init__(self, script: Optional[Callable[[int], object]] = None) -> None:
        self.calls = 0
        self.script = script

    async def fetch(self, request: tk.FetchRequest) -> tk.FetchedToken:
        self.calls += 1
        n = self.calls
        if self.script:
            outcome = self.script(n)
            if isinstance(outcome, BaseException):
                raise outcome
            if asyncio.iscoroutine(outcome):
                await outcome
        return tk.FetchedToken(token=tk.Secret(f"tok-{n}"), expires_in=600 * SECOND)


def config(channel: str = "room-1") -> tk.SessionConfig:
    return tk.SessionConfig(spec=tk.SessionSpec(channel=channel, user="u1"))


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


def test_token_expired_fetches_an_emergency_token_and_a_stale_report_returns_the_current_one(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)) as s:
            first = await s.token()
            fresh = await s.token_expired(first.token)
            assert fresh.reason == tk.FetchReason.EMERGENCY
            assert fresh.token != first.token
            assert await s.token_expired(first.token) == fresh  # about a token no longer current
            s.on_token_expired(first.token.expose())  # the notification: ignored as well
            await asyncio.sleep(0.3)
            assert s.current() == fresh
            assert s.counters().emergency_fetches == 1
        assert source.calls == 2

    asyncio.run(main())


def test_token_rejected_refetches_and_two_fresh_rejections_in_a_row_stop_the_session():
    source = Scripted()

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(config(), source)) as s:
            first = await s.token()
            second = await s.token_rejected(first.token)
            assert (second.reason, second.token.expose()) == (tk.FetchReason.REJECTED, "tok-2")
            with pytest.raises(tk.TokenKeeperError.Rejected) as err:
                await s.token_rejected(second.token)
            assert "renew_token()" in err.value.reason
            status = s.status()
            assert status.state is tk.SessionState.FAILED
            assert isinstance(status.error, tk.TokenKeeperError.Rejected)
            # renew_token() clears the fatal state once the app fixed what was wrong.
            third = await s.renew_token()
            assert (third.reason, third.token.expose()) == (tk.FetchReason.FORCED, "tok-3")
            assert s.state() is tk.SessionState.VALID
            assert s.counters().rejections == 2

    asyncio.run(main())


def test_resumed_cuts_a_pending_backoff_short():
    source = Scripted(lambda n: tk.TokenKeeperError.RetryLater(reason="offline", retry_after=None) if n == 1 else None)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper(policy=tk.Policy(backoff_initial=60 * SECOND, backoff_max=60 * SECOND))
        with tk.closing_session(keeper.open_session(config(), source)) as s:
            stream = tk.events(s)
            waiting = asyncio.ensure_future(s.token())
            failed = await asyncio.wait_for(stream.__anext__(), 5)
            assert failed.kind.is_fetch_failed()
            assert failed.kind.next_retry_at - failed.at >= 30 * SECOND  # a long backoff ahead
            await asyncio.sleep(0.3)
            assert source.calls == 1
            started = time.monotonic()
            keeper.resumed()
            issued = await asyncio.wait_for(waiting, 5)
            assert time.monotonic() - started < 2
            assert issued.token.expose() == "tok-2" and source.calls == 2
            await stream.aclose()

    asyncio.run(main())


def test_network_available_retries_a_fetch_stuck_on_the_old_network_and_resumed_does_not():
    cancelled = asyncio.Event()

    async def never_answers() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    source = Scripted(lambda n: never_answers() if n == 1 else None)  # attempt 1 never answers

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper(policy=tk.Policy(fetch_timeout=60 * SECOND))
        with tk.closing_session(keeper.open_session(config(), source)) as s:
            waiting = asyncio.ensure_future(s.token())
            await wait_until(lambda: source.calls == 1)
            keeper.resumed()  # no backoff to cut short, and the fetch may still answer
            await asyncio.sleep(0.5)
            assert source.calls == 1 and not waiting.done()
            keeper.network_available()
            issued = await asyncio.wait_for(waiting, 5)
            assert issued.token.expose() == "tok-2" and source.calls == 2
        # Closing cancels the stuck attempt's task on this loop (before the loop ends).
        await asyncio.wait_for(cancelled.wait(), 5)

    asyncio.run(main())


def test_status_updates_replay_the_current_status_then_each_change_and_end_after_closed():
    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        s = keeper.open_session(config(), Scripted())
        seen: list[tk.SessionStatus] = []

        async def collect(stream: tk.StatusStream) -> None:
            async for status in stream:
                seen.append(status)

        updates = tk.status_updates(s)
        seen.append(await updates.__anext__())  # the status now: nothing fetched yet
        collector = asyncio.ensure_future(collect(updates))
        issued = await s.token()
        await wait_until(lambda: any(st.state is tk.SessionState.VALID for st in seen))
        # A subscriber that comes later gets the status now first.
        async with tk.status_updates(s) as late:
            now = await late.__anext__()
        assert now == tk.SessionStatus(state=tk.SessionState.VALID, expires_at=issued.expires_at, error=None)
        s.close()
        await asyncio.wait_for(collector, 5)
        states = [st.state for st in seen]
        assert states[0] is tk.SessionState.IDLE
        assert tk.SessionState.VALID in states
        assert states[-1] is tk.SessionState.CLOSED
        assert seen[-1].error is None and s.current() is None
        # A closed session's stream replays CLOSED and ends.
        assert [st.state async for st in tk.status_updates(s)] == [tk.SessionState.CLOSED]

    asyncio.run(main())


def test_status_tells_a_failed_session_from_a_closed_one():
    source = Scripted(lambda n: tk.TokenKeeperError.ReauthRequired(reason="refresh token revoked"))

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(config(), source)) as s:
            with pytest.raises(tk.TokenKeeperError.ReauthRequired):
                await s.token()
            async with tk.status_updates(s) as statuses:
                status = await statuses.__anext__()
            assert status.state is tk.SessionState.FAILED
            assert isinstance(status.error, tk.TokenKeeperError.ReauthRequired)
            assert "revoked" in status.error.reason

    asyncio.run(main())


def test_a_listener_that_raises_keeps_receiving_and_the_session_survives(caplog):
    source = Scripted()
    raised: list[tk.EventKind] = []
    received: list[tk.EventKind] = []

    @tk.event_listener
    def broken(event: tk.SessionEvent) -> None:
        raised.append(event.kind)
        raise ValueError("a bug in the app's listener")

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(config(), source)) as s:
            registration = s.add_listener(broken)
            s.add_listener(tk.event_listener(lambda e: received.append(e.kind)))
            await s.token()
            renewed = await s.renew_token()
            # renew_token() can return before its ISSUED event is queued for the listeners, so
            # flush_listeners() alone may not cover it: wait for it, then flush.
            await wait_until(lambda: sum(1 for k in received if k.is_issued()) == 2)
            assert keeper.flush_listeners(datetime.timedelta(seconds=5))
            assert renewed.token.expose() == "tok-2"
            assert s.state() is tk.SessionState.VALID
            # It raised on every event and still received each one, in order.
            assert raised == received
            assert [k.reason for k in raised if k.is_issued()] == [tk.FetchReason.INITIAL, tk.FetchReason.FORCED]
            assert registration.remove() and not registration.remove()
            await s.renew_token()
            await wait_until(lambda: sum(1 for k in received if k.is_issued()) == 3)
            assert keeper.flush_listeners(datetime.timedelta(seconds=5))
            assert len(received) > len(raised), "removed: it receives nothing more"

    caplog.set_level(logging.WARNING, logger="tokenkeeper")
    tk.forward_logs()
    try:
        asyncio.run(main())
    finally:
        tk.clear_log_sink()
    warnings = [r for r in caplog.records if "listener threw" in r.getMessage()]
    assert len(warnings) == len(raised)
    assert all(r.levelno == logging.WARNING and r.name.startswith("tokenkeeper.") for r in warnings)
    assert all("a bug in the app" in r.getMessage() for r in warnings)


def test_an_async_token_sink_runs_on_the_event_loop_for_each_renewed_token():
    loop_thread: list[int] = []
    applied: list[tuple[str, int]] = []

    async def reauth(token: tk.IssuedToken) -> None:
        await asyncio.sleep(0.01)
        applied.append((token.token.expose(), threading.get_ident()))

    async def main():
        tk.use_running_loop()
        loop_thread.append(threading.get_ident())
        keeper = tk.Keeper()
        sink = tk.token_sink(reauth)
        with tk.closing_session(keeper.open_session(config(), Scripted(), sink=sink)) as s:
            joined = await s.token()  # the join token: the engine holds it, not applied
            await s.renew_token()
            await s.renew_token()
            await wait_until(lambda: s.counters().applies == 2)
            assert joined.token.expose() == "tok-1"

    asyncio.run(main())
    assert applied == [("tok-2", loop_thread[0]), ("tok-3", loop_thread[0])]


def test_a_sink_that_raises_is_retried_with_the_same_token():
    attempts: list[str] = []

    def flaky(token: tk.IssuedToken) -> None:
        attempts.append(token.token.expose())
        if len(attempts) == 1:
            raise ConnectionError("engine not ready")

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        source = Scripted()
        with tk.closing_session(keeper.open_session(config(), source, sink=tk.token_sink(flaky))) as s:
            await s.token()
            await s.renew_token()
            await wait_until(lambda: s.counters().applies == 1)
            c = s.counters()
            assert (c.apply_failures, source.calls) == (1, 2)

    asyncio.run(main())
    assert attempts == ["tok-2", "tok-2"]


def test_an_async_sink_that_does_not_answer_within_its_timeout_is_retried():
    calls: list[str] = []

    async def reauth(token: tk.IssuedToken) -> None:
        calls.append(token.token.expose())
        if len(calls) == 1:
            await asyncio.sleep(30)  # the socket is stuck

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        sink = tk.token_sink(reauth, timeout=datetime.timedelta(milliseconds=200))
        with tk.closing_session(keeper.open_session(config(), Scripted(), sink=sink)) as s:
            await s.token()
            started = time.monotonic()
            await s.renew_token()
            await wait_until(lambda: s.counters().applies == 1)
            assert time.monotonic() - started < 3
            assert s.counters().apply_failures == 1

    asyncio.run(main())
    assert calls == ["tok-2", "tok-2"]
