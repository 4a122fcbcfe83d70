"""tokenkeeper: keeps short-lived real-time access tokens alive (Python bindings).

The generated module (``tokenkeeper._native.tokenkeeper``, written by uniffi-bindgen when maturin
builds the wheel, never edited by hand) provides ``Keeper``, ``Session``, the records and the errors; this package adds
what belongs in Python only: an async iterator over events, a context manager for sessions and
the event-loop hook that host token sources written with ``async def`` need.

Every token and credential crosses the boundary as a ``Secret``: ``str()``/``repr()`` show only
its length (``Secret(len=187)``), so the records holding one are safe to print and log; read the
text with ``expose()`` only where it is used.

    import asyncio, tokenkeeper as tk

    class Backend(tk.TokenSource):
        async def fetch(self, request):
            token = await my_http_call(request.session.channel)
            return tk.FetchedToken(token=tk.Secret(token))

    async def main():
        tk.use_running_loop()
        keeper = tk.Keeper()
        with tk.closing_session(keeper.open_session(
                tk.SessionConfig(spec=tk.SessionSpec(channel="live-42", user="1001")), Backend())) as s:
            issued = await s.token()
            print(issued)                   # IssuedToken(token=Secret(len=187), …): safe to log
            engine.renew_token(issued.token.expose())
            async for event in tk.events(s):
                ...
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
from typing import Iterator, Union

from ._native import tokenkeeper as _generated
from ._native.tokenkeeper import *  # noqa: F401,F403  (the generated API)
from ._native.tokenkeeper import (
    EventSubscription,
    Keeper,
    Session,
    SessionEvent,
    clear_log_sink,
    shutdown_runtime,
    uniffi_set_event_loop,
)

__all__ = [name for name in dir() if not name.startswith("_")]


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



@atexit.register
def _stop_sdk_threads() -> None:
    # SDK threads must not call into Python (log sink, releasing a Python token source) while
    # the interpreter shuts down: stop forwarding logs and stop the SDK runtime first.
    clear_log_sink()
    shutdown_runtime(1000)


def use_running_loop() -> None:
    """Runs ``async def`` host callbacks (token sources) on the current asyncio loop.

    Call it once from inside that loop before opening sessions whose source is an ``async``
    Python object: the SDK calls the source from its own threads, which have no loop. Awaiting
    the SDK from other loops and threads keeps working.
    """
    uniffi_set_event_loop(asyncio.get_running_loop())


class EventStream:
    """An async iterator over a session's (or keeper's) events from the moment it was created.

    Ends when the session closes. ``aclose()`` (or leaving an ``async with``) stops it early.
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
    """Subscribes now to ``source``'s events and returns them as an async iterator."""
    return EventStream(source.subscribe())


@contextlib.contextmanager
def closing_session(session: Session) -> Iterator[Session]:
    """Closes ``session`` (its renewals stop at once) when the block ends."""
    try:
        yield session
    finally:
        session.close()
