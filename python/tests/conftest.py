"""Shared fixtures: the reference backend started by scripts/test-python.sh."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import re
import threading
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Iterator

import pytest

import tokenkeeper as tk


@dataclass
class User:
    id: str
    api_key: str


class Backend:
    """Admin access to the backend at TK_SERVER_URL (stdlib HTTP client)."""

    def __init__(self, url: str, admin_key: str) -> None:
        self.url = url
        self.admin_key = admin_key

    def admin(self, path: str, body: dict | None = None, method: str = "POST") -> dict:
        req = urllib.request.Request(
            f"{self.url}/admin{path}",
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.admin_key}", "Content-Type": "application/json"},
            method=method,
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.loads(resp.read())

    @contextlib.contextmanager
    def faults(self, **changes: object) -> Iterator[None]:
        """Fault injection and tunables of the backend (`/admin/faults`) changed inside the block:
        `error_rate` (a share of token requests answered 503 with `Retry-After: 1` or 500),
        `latency_ms` (added to every token request), `token_ttl_secs` (default lifetime)…"""
        before = self.admin("/faults", method="GET")
        self.admin("/faults", changes, method="PUT")
        try:
            yield
        finally:
            self.admin("/faults", {key: before[key] for key in changes}, method="PUT")

    def user_with_stream(self) -> tuple[User, str]:
        uid = "py-" + uuid.uuid4().hex[:8]
        created = self.admin("/users", {"id": uid})
        channel = f"ch-{uid}"
        self.admin("/streams", {"channel": channel, "owner": uid})
        return User(uid, created["api_key"]), channel

    def ban(self, user: User) -> None:
        self.admin(f"/users/{user.id}/ban", {})


class PythonHttpSource(tk.TokenSource):
    """A token source written in Python: urllib in a worker thread, errors classified by the SDK.

    Counts what the backend answered, independently of the SDK's counters: `calls` (requests),
    `issued` (every token the backend returned, in order)."""

    def __init__(self, backend: Backend, api_key: str, ttl_secs: int = 60, delay_s: float = 0.0,
                 rotate: bool = False) -> None:
        self.backend = backend
        self.api_key = api_key
        self.ttl_secs = ttl_secs
        self.delay_s = delay_s
        self.rotate = rotate
        self.calls = 0
        self.issued: list[str] = []
        self.seen_credentials: list = []
        self._lock = threading.Lock()

    async def fetch(self, request: tk.FetchRequest) -> tk.FetchedToken:
        self.calls += 1
        n = self.calls
        self.seen_credentials.append(request.credentials.expose() if request.credentials else None)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        body = json.dumps({
            "vendor": "agora",
            "channel": request.session.channel,
            "user_id": request.session.user,
            "role": request.session.role or "subscriber",
            "ttl_secs": self.ttl_secs,
        }).encode()
        req = urllib.request.Request(
            f"{self.backend.url}/api/v1/rtc/token",
            data=body,
            headers={"Authorization": f"Bearer {self.api_key}", "Content-Type": "application/json"},
            method="POST",
        )

        def call() -> str:
            try:
                with urllib.request.urlopen(req, timeout=request.timeout.total_seconds()) as resp:
                    token = json.loads(resp.read())["token"]
            except urllib.error.HTTPError as e:
                retry = e.headers.get("Retry-After")
                raise tk.error_for_http_status(
                    e.code, datetime.timedelta(seconds=int(retry)) if retry else None, e.read().decode()[:200])
            except urllib.error.URLError as e:
                raise tk.TokenKeeperError.RetryLater(reason=f"network: {e.reason}", retry_after=None)
            with self._lock:
                self.issued.append(token)
            return token

        token = await asyncio.to_thread(call)
        return tk.FetchedToken(token=tk.Secret(token),
                               rotated_credentials=tk.Secret(f"refresh-{n}") if self.rotate else None)


@pytest.fixture(scope="session")
def backend() -> Backend:
    url = os.environ.get("TK_SERVER_URL")
    key = os.environ.get("TK_ADMIN_KEY")
    if not url or not key:
        pytest.fail("TK_SERVER_URL/TK_ADMIN_KEY not set: run scripts/test-python.sh")
    return Backend(url, key)


def spec(user: User, channel: str) -> tk.SessionSpec:
    return tk.SessionSpec(channel=channel, user=user.id, role="publisher")


JWT_RE = re.compile(r"c2lnbmF0dXJl")
