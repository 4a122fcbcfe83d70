"""tokenkeeper: keeps short-lived real-time access tokens alive (Python bindings).

The generated module (``tokenkeeper._native.tokenkeeper``, written by uniffi-bindgen when maturin
builds the wheel, never edited by hand) provides ``Keeper``, ``Session``, the records and the
errors; this package adds what belongs in Python only, and no token logic:

- ``token_sink(fn)``: a plain function or an ``async def`` as the engine's "renew token" call;
- ``status_updates(session)``: the status now, then each change (``async for``);
- ``events(session)``: the events from now on, until the session closes (``async for``);
- ``event_listener(fn)``: a function as an ``EventListener``;
- ``forward_logs(logger)``: the SDK's log records into the ``logging`` module;
- ``closing_session(session)`` and ``use_running_loop()``.

Times are ``datetime`` (timezone-aware, UTC) and durations ``timedelta``. Every token and
credential crosses the boundary as a ``Secret``: ``str()``/``repr()`` show only its length
(``Secret(len=187)``), so the records holding one are safe to print and log; read the text with
``expose()`` only where it is used.

    import tokenkeeper as tk

    @tk.token_sink
    def renew(token: tk.IssuedToken) -> None:            # the engine's "renew token" call
        if connection.renew_token(token.token.expose()) != 0:
            raise RuntimeError("renew_token failed")        # retried by the SDK

    async def main():
        keeper = tk.Keeper()
        config = tk.SessionConfig(spec=tk.SessionSpec(channel="live-42", user="1001"))
        http = tk.HttpSourceConfig(endpoint=TOKEN_URL, bearer=tk.Secret(api_key))
        with tk.closing_session(keeper.open_http_session(config, http, sink=renew)) as session:
            connection.connect((await session.token()).token.expose(), "live-42", "1001")
            # Engine callbacks: session.on_token_will_expire(token), session.on_token_expired().
            async for status in tk.status_updates(session):   # ends after CLOSED
                ...

The README (python/README.md) walks through whole integrations.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import dataclasses
import datetime
import inspect as _inspect
import logging
from typing import Any, Awaitable, Callable, Iterator, Optional, Union

from ._native import tokenkeeper as _generated
from ._native.tokenkeeper import *  # noqa: F401,F403  (the generated API)
from ._native.tokenkeeper import (
    EventListener,
    EventSubscription,
    IssuedToken,
    Keeper,
    LogLevel,
    LogRecord,
    LogSink,
    Session,
    SessionEvent,
    SessionStatus,
    StatusSubscription,
    TokenSink,
    clear_log_sink,
    set_log_sink,
    shutdown_runtime,
    uniffi_set_event_loop,
)


def _loop_for_this_thread() -> asyncio.AbstractEventLoop:
    # The generated module uses the loop given to `uniffi_set_event_loop` for *every* async call
    # once one is set, so awaiting the SDK from any other loop (another thread's asyncio.run)
    # fails with "attached to a different loop". Calls made inside a running loop use that
    # loop; only callbacks the SDK makes from its own threads (host token sources) fall back to
    # the registered one.
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        loop = _generated._UNIFFI_GLOBAL_EVENT_LOOP
        if loop is None:
            raise RuntimeError(
                "tokenkeeper: an async host callback needs an event loop; call "
                "tokenkeeper.use_running_loop() inside your loop before opening sessions"
            ) from None
        return loop


_generated._uniffi_get_event_loop = _loop_for_this_thread


@_generated._UNIFFI_FOREIGN_FUTURE_DROPPED_CALLBACK
def _cancel_dropped_host_call(handle: int) -> None:
    # The SDK dropped an `async def` host call it no longer waits for (a stalled token fetch
    # cancelled by `close()`): cancel its task. The generated callback uses `call_soon`, which is
    # not thread-safe: called from an SDK thread, the cancellation waited until the loop woke
    # for something else, and raised "Event loop is closed" once the loop had ended.
    loop, task = _generated._UNIFFI_FOREIGN_FUTURE_HANDLE_MAP.remove(handle)
    try:
        loop.call_soon_threadsafe(_generated._uniffi_cancel_task, task)
    except RuntimeError:
        pass  # the loop is closed: the task will never run again anyway


_generated._uniffi_future_dropped_callback = _cancel_dropped_host_call


def _readable_reprs() -> None:
    # The generated records and enum variants are dataclasses without declared fields, so their
    # dataclass repr is `SessionStatus()`: in lists, f"{x!r}" and pytest messages nothing shows.
    # Their __str__ lists the fields (a Secret prints as its length only): use it as repr too.
    classes = [getattr(_generated, name) for name in _generated.__all__]
    classes += [v for c in list(classes) if isinstance(c, type) for v in vars(c).values()]
    for cls in classes:
        if (isinstance(cls, type) and dataclasses.is_dataclass(cls) and not dataclasses.fields(cls)
                and cls.__str__ is not object.__str__):
            cls.__repr__ = cls.__str__


_readable_reprs()


@atexit.register
def _stop_sdk_threads() -> None:
    # SDK threads must not call into Python (log sink, releasing a Python token source) while
    # the interpreter shuts down: stop forwarding logs and stop the SDK runtime first.
    clear_log_sink()
    shutdown_runtime(datetime.timedelta(seconds=1))


def use_running_loop() -> None:
    """Runs ``async def`` host callbacks (token sources, async sinks) on the current asyncio loop.

    Call it once from inside that loop before opening sessions whose source is an ``async``
    Python object: the SDK calls the source from its own threads, which have no loop. Awaiting
    the SDK from other loops and threads keeps working.
    """
    uniffi_set_event_loop(asyncio.get_running_loop())


# --- Streams -------------------------------------------------------------------------------------


class EventStream:
    """An async iterator over a session's (or keeper's) events from the moment it was created.

    Ends after the ``Closed`` event (for a keeper: when it shuts down). ``aclose()`` (or leaving
    an ``async with``) stops it early. A fatal stop does not end it: it arrives as a
    ``ReauthRequired``, ``Forbidden`` or ``Failed`` event, and the session can resume
    (``set_credentials``, ``renew_token()``); ``status_updates`` tells "closed" from "failed".
    """

    def __init__(self, subscription: EventSubscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> SessionEvent:
        event = await self._subscription.next()
        if event is None:
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        """Ends the stream: a pending and every later ``__anext__`` stops the iteration."""
        self._subscription.cancel()

    async def __aenter__(self) -> "EventStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def lagged(self) -> int:
        """Events skipped because this reader fell more than 64 behind."""
        return self._subscription.lagged()


def events(source: Union[Session, Keeper]) -> EventStream:
    """Subscribes now to ``source``'s events and returns them as an async iterator.

    Nothing emitted between this call and the first ``async for`` step is lost.

        async with tk.events(session) as stream:
            async for event in stream:
                if event.kind.is_fetch_failed():
                    log.warning("attempt %d failed: %s", event.kind.attempt, event.kind.error)
    """
    return EventStream(source.subscribe())


class StatusStream:
    """An async iterator over a session's status: the current status first, then each change;
    it ends after the ``CLOSED`` status. A reader that falls behind skips to the
    newest status. ``aclose()`` (or leaving an ``async with``) stops it early."""

    def __init__(self, subscription: StatusSubscription) -> None:
        self._subscription = subscription

    def __aiter__(self) -> "StatusStream":
        return self

    async def __anext__(self) -> SessionStatus:
        status = await self._subscription.next()
        if status is None:
            raise StopAsyncIteration
        return status

    async def aclose(self) -> None:
        """Ends the stream: a pending and every later ``__anext__`` stops the iteration."""
        self._subscription.cancel()

    async def __aenter__(self) -> "StatusStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def status_updates(session: Session) -> StatusStream:
    """The session's current status, then each change, as an async iterator that ends after
    ``SessionState.CLOSED`` (a closed session's yields ``CLOSED`` alone). The first value is the
    status when iteration starts; a reader that falls behind skips to the newest status.

    A session stopped by a fatal error is ``FAILED`` with the error in ``status.error``
    (``TokenKeeperError.ReauthRequired``, ``.Forbidden``, ``.Rejected``, ``.Misconfigured``);
    a closed one is ``CLOSED``, the last value.

        async for status in tk.status_updates(session):
            if status.state is tk.SessionState.FAILED:
                show_error(status.error)
    """
    return StatusStream(session.watch_status())


# --- Host callbacks from functions ---------------------------------------------------------------

SinkFunction = Callable[[IssuedToken], Union[None, Awaitable[None]]]


async def _awaited(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


class _FunctionSink(TokenSink):
    def __init__(self, fn: SinkFunction, timeout: float) -> None:
        self._fn = fn
        self._timeout = timeout
        try:
            self._loop: Optional[asyncio.AbstractEventLoop] = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None

    def apply(self, token: IssuedToken) -> None:
        result = self._fn(token)
        if not _inspect.isawaitable(result):
            return
        # An `async def` (or a function returning an awaitable): run it on the app's loop and
        # wait here, on the SDK thread, for its outcome.
        loop = self._loop or _generated._UNIFFI_GLOBAL_EVENT_LOOP
        if loop is None or loop.is_closed():
            if _inspect.iscoroutine(result):
                result.close()
            raise RuntimeError(
                "tokenkeeper: an async token sink needs a running event loop; create it inside "
                "the loop (or call tokenkeeper.use_running_loop() there)"
            )
        coroutine = _awaited(result)
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop closed meanwhile: nothing will run it
            coroutine.close()
            if _inspect.iscoroutine(result):
                result.close()
            raise
        try:
            future.result(self._timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def __repr__(self) -> str:
        return f"token_sink({getattr(self._fn, '__qualname__', self._fn)!r})"


def token_sink(fn: SinkFunction, *, timeout: Union[float, datetime.timedelta] = 10.0) -> TokenSink:
    """The engine's "renew token" call as a ``TokenSink`` for ``open_session(…, sink=…)``.

    The session calls it once for every token after the one the app joined with, in order,
    never with an expired token, on an SDK thread, one call at a time. Raise when the engine did
    not take the token (e.g. Agora's ``renew_token`` returned an error code): the SDK retries
    it, and a fresh token the engine refuses three times in a row, over at least 5 s, is
    treated as rejected (a new one is fetched).

    ``fn`` is a plain function, or an ``async def`` (a WebSocket re-auth message): that one runs
    on the event loop running where ``token_sink`` was called (else the one given to
    ``use_running_loop()``), and the SDK thread waits for it at most ``timeout`` (default 10 s,
    the default ``Policy.fetch_timeout``: the SDK counts a longer call as failed anyway).
    Usable as a decorator:

        @tk.token_sink
        def renew(token: tk.IssuedToken) -> None:
            code = connection.renew_token(token.token.expose())
            if code != 0:
                raise RuntimeError(f"renew_token returned {code}")
    """
    seconds = timeout.total_seconds() if isinstance(timeout, datetime.timedelta) else float(timeout)
    return _FunctionSink(fn, seconds)


class _FunctionListener(EventListener):
    def __init__(self, fn: Callable[[SessionEvent], Any]) -> None:
        self._fn = fn

    def on_event(self, event: SessionEvent) -> None:
        self._fn(event)

    def __repr__(self) -> str:
        return f"event_listener({getattr(self._fn, '__qualname__', self._fn)!r})"


def event_listener(fn: Callable[[SessionEvent], Any]) -> EventListener:
    """``fn`` as an ``EventListener`` for ``session.add_listener(…)`` / ``keeper.add_listener(…)``.

    It runs on the SDK's event thread, in order, never on the renewal path: a slow listener
    delays only later events, and an exception it raises is logged (SDK log, ``WARN``) while it
    keeps receiving events. Keep the returned registration to ``remove()`` it.

        registration = session.add_listener(tk.event_listener(lambda e: print(e.kind)))
    """
    return _FunctionListener(fn)


_LOGGING_LEVELS = {
    LogLevel.TRACE: 5,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
}


class LoggingSink(LogSink):
    """A ``LogSink`` that hands each record to a ``logging.Logger`` (named
    ``<logger>.<record.target>``, e.g. ``tokenkeeper.lifecycle.session``), at the matching
    level (``TRACE`` is level 5). Records are already redacted: no token or secret."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger

    def log(self, record: LogRecord) -> None:
        level = _LOGGING_LEVELS[record.level]
        target = self._child(record.target)
        if target.isEnabledFor(level):
            target.log(level, "%s", record.message)

    def _child(self, target: str) -> logging.Logger:
        # `tokenkeeper::lifecycle::session` under the logger `tokenkeeper` is
        # `tokenkeeper.lifecycle.session`, not `tokenkeeper.tokenkeeper.lifecycle.session`.
        head, _, rest = target.replace("::", ".").partition(".")
        if head == self._logger.name.rpartition(".")[2]:
            return self._logger.getChild(rest) if rest else self._logger
        return self._logger.getChild(target.replace("::", ".")) if target else self._logger


def forward_logs(logger: Optional[logging.Logger] = None, min_level: Optional[LogLevel] = None) -> LoggingSink:
    """Sends the SDK's log records to ``logger`` (default ``logging.getLogger("tokenkeeper")``).

    ``min_level``: the least severe record the SDK produces; default: from the logger's
    effective level (``WARNING`` → ``WARN``), so records nobody would see are not produced.
    Replaces any earlier sink; ``clear_log_sink()`` stops forwarding.

        logging.basicConfig(level=logging.INFO)
        tk.forward_logs()
    """
    logger = logger or logging.getLogger("tokenkeeper")
    if min_level is None:
        effective = logger.getEffectiveLevel()
        min_level = next((lvl for lvl in (LogLevel.TRACE, LogLevel.DEBUG, LogLevel.INFO, LogLevel.WARN)
                          if _LOGGING_LEVELS[lvl] >= effective), LogLevel.ERROR)
    sink = LoggingSink(logger)
    set_log_sink(sink, min_level)
    return sink


@contextlib.contextmanager
def closing_session(session: Session) -> Iterator[Session]:
    """Closes ``session`` (its renewals stop at once) when the block ends."""
    try:
        yield session
    finally:
        session.close()


__all__ = sorted(
    set(_generated.__all__)
    | {
        "EventStream", "LoggingSink", "StatusStream", "closing_session", "event_listener", "events",
        "forward_logs", "status_updates", "token_sink", "uniffi_set_event_loop", "use_running_loop",
    }
)
