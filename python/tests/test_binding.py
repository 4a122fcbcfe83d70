"""Binding-level behaviour that needs no backend: defaults, inspect, errors, logs."""

from __future__ import annotations

import asyncio
import datetime
import logging

import pytest

import tokenkeeper as tk

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ"


def test_policy_leaves_every_field_to_the_core_and_default_policy_shows_the_values():
    unset = tk.Policy()
    assert unset.renew_lead is None and unset.token_wait is None and unset.adaptive_lead is None
    defaults = tk.default_policy()
    assert defaults.renew_lead == datetime.timedelta(seconds=30)
    assert defaults.renew_jitter == datetime.timedelta(seconds=3)
    assert defaults.fetch_timeout == datetime.timedelta(seconds=10)
    assert defaults.token_wait == datetime.timedelta(seconds=30)
    assert defaults.backoff_initial == datetime.timedelta(seconds=1)
    assert defaults.adaptive_lead is True


def test_inspect_decodes_a_jwt_without_a_key():
    info = tk.inspect(JWT)
    assert info.format == tk.TokenFormat.JWT
    assert info.expires_at == datetime.datetime.fromtimestamp(9_999_999_999, tz=datetime.timezone.utc)
    assert info.user == "1"


def test_inspect_rejects_garbage_with_invalid_token():
    with pytest.raises(tk.TokenKeeperError.InvalidToken) as err:
        tk.inspect("Bearer abc")
    assert "Bearer" in err.value.reason


def test_http_statuses_map_to_what_the_app_should_do():
    assert isinstance(tk.error_for_http_status(401, None, "x"), tk.TokenKeeperError.ReauthRequired)
    assert isinstance(tk.error_for_http_status(403, None, "x"), tk.TokenKeeperError.Forbidden)
    retry = tk.error_for_http_status(503, datetime.timedelta(seconds=2), "busy")
    assert isinstance(retry, tk.TokenKeeperError.RetryLater)
    assert retry.retry_after == datetime.timedelta(seconds=2)


class StaticSource(tk.TokenSource):
    async def fetch(self, request):
        return tk.FetchedToken(token=tk.Secret(JWT))


class ListSink(tk.LogSink):
    def __init__(self):
        self.records = []

    def log(self, record):
        self.records.append(record)


def test_log_sink_receives_records_without_tokens():
    sink = ListSink()
    tk.set_log_sink(sink, tk.LogLevel.DEBUG)
    try:
        async def main():
            tk.use_running_loop()
            keeper = tk.Keeper()
            with tk.closing_session(keeper.open_session(
                    tk.SessionConfig(spec=tk.SessionSpec(channel="log-room", user="u1")), StaticSource())) as s:
                assert (await s.token()).token.expose() == JWT

        asyncio.run(main())
    finally:
        tk.clear_log_sink()
    assert any(r.target.startswith("tokenkeeper") for r in sink.records)
    assert not any(JWT in r.message or "c2lnbmF0dXJl" in r.message for r in sink.records)


def test_records_print_secrets_as_their_length_only():
    secret = tk.Secret(JWT)
    assert str(secret) == repr(secret) == f"Secret(len={len(JWT)})"
    assert secret.expose() == JWT and secret.len() == len(JWT) and not secret.is_empty()
    assert secret == tk.Secret(JWT) and hash(secret) == hash(tk.Secret(JWT))
    assert secret != tk.Secret("other")
    requests = []
    tokens = [JWT, JWT[:-2] + "ZA"]  # a renewal must bring a different token

    class Recording(tk.TokenSource):
        async def fetch(self, request):
            requests.append((str(request), repr(request)))
            token = tokens[len(requests) - 1]
            return tk.FetchedToken(token=tk.Secret(token), rotated_credentials=tk.Secret("refresh-SECRET"))

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(
                tk.SessionConfig(spec=tk.SessionSpec(channel="print-room", user="u1")), Recording())) as s:
            issued = await s.token()
            await s.renew_token()
            return issued, s.current()

    issued, current = asyncio.run(main())
    assert str(issued).startswith(f"IssuedToken(token=Secret(len={len(JWT)})")
    assert "previous_token=Secret(len=" in requests[1][0]
    fetched = tk.FetchedToken(token=tk.Secret(JWT), rotated_credentials=tk.Secret("refresh-SECRET"))
    http = tk.HttpSourceConfig(endpoint="https://api.example.com/token", bearer=tk.Secret("bearer-SECRET"),
                               headers={"X-Api-Key": tk.Secret("key-SECRET")})
    printed = [str(issued), repr(issued), str(current), repr(current), f"{issued}", str(fetched), repr(fetched),
               str(http), repr(http), str([issued]), str({"t": issued})]
    printed += [text for pair in requests for text in pair]
    for text in printed:
        assert all(t not in text for t in tokens) and "c2lnbmF0dXJl" not in text, text
        assert "SECRET" not in text, text


def test_interpreter_exits_cleanly_with_a_live_python_source():
    """SDK threads are stopped before Python finalizes (atexit), so exit is clean, not an abort."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import asyncio, tokenkeeper as tk
        class S(tk.TokenSource):
            async def fetch(self, request):
                return tk.FetchedToken(token=tk.Secret({JWT!r}))
        async def main():
            tk.use_running_loop()
            keeper = tk.Keeper()
            s = keeper.open_session(tk.SessionConfig(spec=tk.SessionSpec(channel="c", user="u")), S())
            await s.token()
            s.close()
        asyncio.run(main())
        print("done")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"


def test_records_and_enum_variants_repr_their_fields_and_no_secret():
    now = datetime.datetime.now(datetime.timezone.utc)
    issued = tk.IssuedToken(token=tk.Secret(JWT), expires_at=now, received_at=now, reason=tk.FetchReason.INITIAL)
    status = tk.SessionStatus(state=tk.SessionState.VALID, expires_at=now, error=None)
    kind = tk.EventKind.APPLIED(expires_at=now)
    for value in (issued, status, kind):
        assert repr(value) == str(value)
    assert repr([status]) == f"[SessionStatus(state=SessionState.VALID, expires_at={now}, error=None)]"
    assert repr(kind) == f"EventKind.APPLIED(expires_at={now})"
    assert JWT not in repr([issued]) and f"Secret(len={len(JWT)})" in repr([issued])
    assert repr(tk.Policy(renew_lead=datetime.timedelta(seconds=60))).startswith("Policy(renew_lead=0:01:00, ")


def test_forward_logs_names_loggers_after_the_sdk_module_and_follows_the_level(caplog):
    logger = logging.getLogger("tokenkeeper")
    caplog.set_level(logging.INFO, logger="tokenkeeper")
    tk.forward_logs()
    try:
        keeper = tk.Keeper()
        keeper.network_available()
        keeper.shutdown()
    finally:
        tk.clear_log_sink()
    records = [r for r in caplog.records if r.getMessage() == "network available: retrying now"]
    assert [(r.name, r.levelno) for r in records] == [("tokenkeeper.lifecycle.keeper", logging.INFO)]
    assert logger.level == logging.INFO
