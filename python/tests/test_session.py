"""Session lifecycle through the Python bindings, against the reference backend over loopback."""

from __future__ import annotations

import asyncio
import datetime
import threading

import pytest

import tokenkeeper as tk
from conftest import PythonHttpSource, spec


def run(coro):
    return asyncio.run(coro)


def test_first_token_comes_from_the_python_source_and_decodes(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key, ttl_secs=120)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)) as s:
            assert s.current() is None
            issued = await s.token()
            info = tk.inspect(issued.token.expose())
            assert issued.token.expose() not in str(issued) and issued.token.expose() not in repr(issued)
            assert issued.reason == tk.FetchReason.INITIAL
            assert info.format == tk.TokenFormat.AGORA007
            assert info.channel == channel and info.user == user.id
            assert issued.expires_at == info.expires_at
            assert issued.expires_at.tzinfo is not None, "aware datetimes (UTC)"
            lifetime = issued.expires_at - issued.received_at
            assert datetime.timedelta(seconds=115) <= lifetime <= datetime.timedelta(seconds=121)
            assert s.current() == issued
            assert s.state() == tk.SessionState.VALID
        assert source.calls == 1

    run(main())


def test_short_tokens_renew_on_schedule_seen_through_async_for(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key, ttl_secs=3)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper(policy=tk.Policy(renew_lead=datetime.timedelta(seconds=1),
                                            renew_jitter=datetime.timedelta(0)))
        with tk.closing_session(keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)) as s:
            reasons = []

            async def collect():
                async with tk.events(s) as stream:
                    async for event in stream:
                        if event.kind.is_issued():
                            reasons.append(event.kind.reason)
                            if len(reasons) == 3:
                                return

            collector = asyncio.ensure_future(collect())
            await asyncio.sleep(0)
            first = await s.token()
            await asyncio.wait_for(collector, 15)
            assert reasons == [tk.FetchReason.INITIAL, tk.FetchReason.SCHEDULED, tk.FetchReason.SCHEDULED]
            assert s.current() is not None and s.current().token != first.token
            assert s.counters().renewals >= 2
            assert s.counters().time_without_token == datetime.timedelta(0)

    run(main())


def test_renew_token_forces_a_fresh_token(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)) as s:
            first = await s.token()
            renewed = await s.renew_token()
            assert renewed.reason == tk.FetchReason.FORCED
            assert renewed.token != first.token
            assert s.current() == renewed
        assert source.calls == 2

    run(main())


class DictStore(tk.CredentialStore):
    def __init__(self):
        self.values = {}

    def load(self, key):
        value = self.values.get(key)
        return tk.Secret(value) if value is not None else None

    def save(self, key, value):
        self.values[key] = value.expose()

    def delete(self, key):
        self.values.pop(key, None)


def test_host_credential_store_gets_rotated_credentials_before_the_token(backend):
    user, channel = backend.user_with_stream()
    store = DictStore()
    store.values["cred:bob"] = "refresh-0"
    source = PythonHttpSource(backend, user.api_key, rotate=True)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper(credential_store=store)
        config = tk.SessionConfig(spec=spec(user, channel), credentials_key="cred:bob")
        with tk.closing_session(keeper.open_session(config, source)) as s:
            await s.token()
            assert store.values["cred:bob"] == "refresh-1"
            await s.renew_token()
            assert store.values["cred:bob"] == "refresh-2"
        assert source.seen_credentials == ["refresh-0", "refresh-1"]

    run(main())


def test_unknown_api_key_is_reauth_required(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, "tku_not-a-real-key")

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)) as s:
            with pytest.raises(tk.TokenKeeperError.ReauthRequired) as err:
                await s.token()
            assert "401" in err.value.reason
            assert s.state() == tk.SessionState.FAILED
        assert source.calls == 1

    run(main())


def test_banned_user_gets_forbidden(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key)
    seen = []

    class Listener(tk.EventListener):
        def on_event(self, event):
            seen.append(event)

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)) as s:
            registration = s.add_listener(Listener())
            await s.token()
            backend.ban(user)
            with pytest.raises(tk.TokenKeeperError.Forbidden) as err:
                await s.renew_token()
            assert "banned" in err.value.reason
            # The error can reach the caller before its event reaches the listeners.
            for _ in range(500):
                if any(e.kind.is_forbidden() for e in seen):
                    break
                await asyncio.sleep(0.01)
            assert keeper.flush_listeners(datetime.timedelta(seconds=5))
            assert any(e.kind.is_forbidden() for e in seen)
            assert registration.remove()

    run(main())


def test_close_ends_iteration_and_counts_no_session(backend):
    user, channel = backend.user_with_stream()

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        s = keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), PythonHttpSource(backend, user.api_key))
        stream = tk.events(s)

        async def drain():
            return [e async for e in stream]

        drained = asyncio.ensure_future(drain())
        await s.token()
        assert keeper.session_count() == 1
        s.close()
        events = await asyncio.wait_for(drained, 5)
        assert events[-1].kind.is_closed()
        assert s.state() == tk.SessionState.CLOSED
        with pytest.raises(tk.TokenKeeperError.Closed):
            await s.token()
        assert keeper.session_count() == 0
        keeper.shutdown()

    run(main())


def test_hundred_threads_share_one_fetch(backend):
    user, channel = backend.user_with_stream()
    source = PythonHttpSource(backend, user.api_key, delay_s=0.3)
    loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=loop.run_forever, daemon=True)
    loop_thread.start()
    tk.uniffi_set_event_loop(loop)  # the Python source runs on this loop
    try:
        keeper = tk.Keeper()
        s = keeper.open_session(tk.SessionConfig(spec=spec(user, channel)), source)
        barrier = threading.Barrier(100)
        tokens, errors = set(), []

        def caller():
            barrier.wait()
            try:
                tokens.add(asyncio.run(s.token()).token.expose())
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=caller) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert errors == []
        assert len(tokens) == 1
        assert source.calls == 1
        s.close()
        keeper.shutdown()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        loop_thread.join(5)


def test_built_in_http_source_fetches_from_the_backend(backend):
    user, channel = backend.user_with_stream()
    http = tk.HttpSourceConfig(
        endpoint=f"{backend.url}/api/v1/rtc/token",
        bearer=tk.Secret(user.api_key),
        json_body='{"vendor":"jwt","channel":"{channel}","user_id":"{user}","role":"{role}","ttl_secs":90}',
    )

    async def main():
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_http_session(tk.SessionConfig(spec=spec(user, channel)), http)) as s:
            issued = await s.token()
            assert tk.inspect(issued.token.expose()).format == tk.TokenFormat.JWT
            lifetime = issued.expires_at - issued.received_at
            assert datetime.timedelta(seconds=85) <= lifetime <= datetime.timedelta(seconds=91)
        with pytest.raises(tk.TokenKeeperError.Misconfigured) as err:
            keeper.open_http_session(tk.SessionConfig(spec=spec(user, channel)),
                                     tk.HttpSourceConfig(endpoint=backend.url, method="NOT A METHOD"))
        assert "method" in err.value.reason
        keeper.shutdown()

    run(main())
