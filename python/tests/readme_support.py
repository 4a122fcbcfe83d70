"""The names python/README.md's snippets use without defining them, declared here for
tests/test_readme.py, which runs every ```python block of the README against the reference
backend.

| name in the README | stands for                               | here                                      |
| ------------------ | ---------------------------------------- | ----------------------------------------- |
| `TOKEN_URL`        | your backend's RTC token endpoint        | the reference backend's `/api/v1/rtc/token` |
| `API_KEY`          | the signed-in user's credential for it   | a fresh user's API key                    |
| `CHANNEL`, `UID`   | the channel and the user                 | a live stream that user owns              |
| `connection`       | an Agora RTC connection (Python Server SDK) | `engines.FakeAgoraConnection`          |
| `open_websocket`   | connecting to your SFU                   | returns an `engines.FakeWebSocket`        |
| `call_ended()`     | your UI: the user hangs up               | returns after `CALL_SECS`                 |
| `sign_in_again()`  | your UI: the user signs in again         | returns the user's API key                |

Time is scaled so that each call sees renewals within a few seconds: the backend issues 3 s
tokens while the snippets run, the engine stand-in says "will expire" 1 s before expiry (Agora:
30 s), and a `tk.Keeper()` created without a policy renews 1 s before expiry (the core's
default: 30 s). A snippet that passes its own policy keeps it.
"""

from __future__ import annotations

import asyncio
import datetime
from typing import Any, Optional

import tokenkeeper as tk
from conftest import Backend
from engines import FakeAgoraConnection, FakeWebSocket

TOKEN_TTL_SECS = 3
WILL_EXPIRE_LEAD_SECS = 1.0
CALL_SECS = 3.5


class ScaledKeeper(tk.Keeper):
    """`tk.Keeper` with the renewal lead scaled to the stand-ins' short tokens."""

    def __init__(self, policy: Optional[tk.Policy] = None,
                 credential_store: Optional[tk.CredentialStore] = None) -> None:
        scaled = tk.Policy(renew_lead=datetime.timedelta(seconds=WILL_EXPIRE_LEAD_SECS))
        super().__init__(policy=policy or scaled, credential_store=credential_store)


def namespace(backend: Backend) -> dict[str, Any]:
    """A fresh set of stand-ins for one snippet."""
    user, channel = backend.user_with_stream()
    sockets: list[FakeWebSocket] = []

    async def open_websocket(url: str) -> FakeWebSocket:
        ws = FakeWebSocket()
        sockets.append(ws)
        return ws

    async def call_ended() -> None:
        await asyncio.sleep(CALL_SECS)

    async def sign_in_again() -> str:
        return user.api_key

    return {
        "__name__": "readme",
        "TOKEN_URL": f"{backend.url}/api/v1/rtc/token",
        "API_KEY": user.api_key,
        "CHANNEL": channel,
        "UID": user.id,
        "SFU_URL": "wss://sfu.example.invalid/room",
        "connection": FakeAgoraConnection(will_expire_lead=WILL_EXPIRE_LEAD_SECS),
        "open_websocket": open_websocket,
        "sockets": sockets,
        "call_ended": call_ended,
        "sign_in_again": sign_in_again,
    }
