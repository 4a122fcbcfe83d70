"""Timing loop for the note (not a test): cost of Session.current() through the binding."""

import asyncio
import time

import tokenkeeper as tk

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2lnbmF0dXJl"


class Static(tk.TokenSource):
    async def fetch(self, request):
        return tk.FetchedToken(token=tk.Secret(JWT))


async def main():
    tk.use_running_loop()
    keeper = tk.Keeper()
    with tk.closing_session(keeper.open_session(
            tk.SessionConfig(spec=tk.SessionSpec(channel="bench", user="u1")), Static())) as s:
        await s.token()
        for _ in range(5_000):
            s.current()
        n = 100_000
        t0 = time.perf_counter_ns()
        for _ in range(n):
            s.current()
        print(f"python: current() through the binding: {(time.perf_counter_ns() - t0) // n} ns/call ({n} calls)")


asyncio.run(main())
