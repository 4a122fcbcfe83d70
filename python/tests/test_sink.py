"""The sink against an Agora-like engine (tests/engines.py), through the Python bindings, against
the reference backend with 25 % of token requests failing and 150 ms of latency, in real time.

Tokens live 6 s; the engine says "will expire" 2 s before expiry and the session's renew lead is
2 s: Agora's 30 s lead and the core's 30 s default, scaled down to tokens short enough to see
several renewal cycles in ~15 s. The three engines run side by side against one backend.
"""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import dataclass
from typing import Callable, Optional

import pytest

import tokenkeeper as tk
from conftest import Backend, PythonHttpSource, spec
from engines import FakeAgoraConnection

TOKEN_TTL_SECS = 6
LEAD_SECS = 2.0
RUN_SECS = 13.0


class TokenObserver:
    """The token callbacks of Agora's connection observer, forwarded as notifications."""

    def __init__(self, session: tk.Session) -> None:
        self.session = session

    def on_token_privilege_will_expire(self, agora_rtc_conn, token: str) -> None:
        self.session.on_token_will_expire(token)

    def on_token_privilege_did_expire(self, agora_rtc_conn) -> None:
        self.session.on_token_expired()  # Agora names no token here


def renew_sink(connection: FakeAgoraConnection) -> tk.TokenSink:
    @tk.token_sink
    def renew(token: tk.IssuedToken) -> None:
        code = connection.renew_token(token.token.expose())
        if code != 0:
            raise RuntimeError(f"renew_token returned {code}")

    return renew


@dataclass
class Run:
    engine: FakeAgoraConnection
    issued: list[str]          # every token the backend issued for this session, in order
    calls: int                 # token requests, failed ones included
    counters: tk.Counters
    state: tk.SessionState
    kinds: list[tk.EventKind]


async def run_engine(backend: Backend, keeper: tk.Keeper, engine: FakeAgoraConnection,
                     on_open: Optional[Callable[[tk.Session], None]] = None) -> Run:
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key, ttl_secs=TOKEN_TTL_SECS)
    session = keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source, sink=renew_sink(engine))
    if on_open:
        on_open(session)
    kinds: list[tk.EventKind] = []
    session.add_listener(tk.event_listener(lambda event: kinds.append(event.kind)))
    engine.register_observer(TokenObserver(session))
    engine.connect((await session.token()).token.expose(), channel, user.id)
    await asyncio.sleep(RUN_SECS)
    # Stop at a quiet moment (token applied, no fetch in flight) so that the backend's list of
    # issued tokens and the engine's are complete.
    for _ in range(500):
        c = session.counters()
        if session.state() is tk.SessionState.VALID and c.applies == c.renewals:
            break
        await asyncio.sleep(0.02)
    engine.disconnect()
    issued, calls = list(source.issued), source.calls
    counters, state = session.counters(), session.state()
    session.close()
    return Run(engine, issued, calls, counters, state, kinds)


@pytest.fixture(scope="module")
def runs(backend: Backend) -> dict[str, Run]:
    async def main() -> dict[str, Run]:
        tk.use_running_loop()
        keeper = tk.Keeper(policy=tk.Policy(renew_lead=datetime.timedelta(seconds=LEAD_SECS),
                                            renew_jitter=datetime.timedelta(0)))
        late_session: list[tk.Session] = []
        stale_reports: list[str] = []

        def report_stale(previous: str) -> None:
            # What an engine that lags behind says about the token it held before.
            stale_reports.append(previous)
            s = late_session[0]
            s.on_token_will_expire(previous)
            s.on_token_expired(previous)
            s.on_token_rejected(previous)

        agora = FakeAgoraConnection(will_expire_lead=LEAD_SECS)
        not_ready = FakeAgoraConnection(will_expire_lead=LEAD_SECS, refuse_renewals=1)
        late = FakeAgoraConnection(will_expire_lead=LEAD_SECS, late_report=report_stale)
        with backend.faults(error_rate=0.25, latency_ms=150):
            results = await asyncio.gather(
                run_engine(backend, keeper, agora),
                run_engine(backend, keeper, not_ready),
                run_engine(backend, keeper, late, on_open=late_session.append),
            )
        assert keeper.flush_listeners(datetime.timedelta(seconds=5))
        keeper.shutdown()
        assert len(stale_reports) >= 2
        return dict(zip(["agora", "not_ready", "late"], results))

    return asyncio.run(main())


def assert_one_path(run: Run) -> None:
    c = run.counters
    assert c.renewals >= 2, c
    # Every token the backend issued reached the engine exactly once, in order: the join token,
    # then each renewal; nothing was fetched that the engine did not get.
    assert run.engine.applied == run.issued
    assert run.engine.duplicates == 0
    # Exactly one successful fetch per renewal cycle (the engine's callbacks added none).
    assert len(run.issued) == c.renewals + 1
    assert c.applies == c.renewals
    assert c.fetches == run.calls and c.failures == run.calls - len(run.issued)
    # The engine never held an expired token.
    assert run.engine.expired_seconds == 0.0
    assert run.engine.stream_failures == 0 and run.engine.did_expire_calls == 0
    assert c.time_without_token == datetime.timedelta(0)
    assert run.state is tk.SessionState.VALID
    assert sum(1 for k in run.kinds if k.is_applied()) == c.applies


def test_every_token_reaches_the_engine_once_in_order_and_never_expired(runs):
    assert_one_path(runs["agora"])
    assert runs["agora"].counters.apply_failures == 0


def test_an_engine_that_refuses_an_apply_gets_it_again_without_a_new_fetch(runs):
    run = runs["not_ready"]
    assert_one_path(run)
    assert run.engine.refused == 1
    assert run.counters.apply_failures == 1
    failed = [k for k in run.kinds if k.is_apply_failed()]
    assert len(failed) == 1 and failed[0].attempt == 1 and "-7" in failed[0].message


def test_late_reports_about_the_previous_token_change_nothing(runs):
    run = runs["late"]
    assert_one_path(run)
    assert run.counters.rejections == 0
    assert run.counters.emergency_fetches == 0
    assert not any(k.is_rejected() or k.is_expired() for k in run.kinds)
