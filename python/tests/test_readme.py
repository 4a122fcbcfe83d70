"""Runs every ```python block of python/README.md as written, against the reference backend.

The names the blocks use without defining them are stand-ins from tests/readme_support.py. After
each block, whatever engine stand-in it drove is checked: no token applied twice, none held
expired, and a call that joined saw at least one renewal reach the engine.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

import tokenkeeper as tk
import readme_support

README = Path(__file__).resolve().parent.parent / "README.md"


def python_blocks() -> list[tuple[str, str]]:
    """(id, source) of each ```python block: the id is its section's title and its line."""
    blocks, section = [], "top"
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            section = re.sub(r"[^a-z0-9]+", "-", line[3:].lower()).strip("-")
        if line.strip() == "```python":
            start = i + 1
            end = lines.index("```", start)
            blocks.append((f"{section}-line{start}", "\n".join(lines[start:end]) + "\n"))
            i = end
        i += 1
    return blocks


BLOCKS = python_blocks()


def test_the_readme_has_the_integrations_it_promises():
    sources = "\n".join(source for _, source in BLOCKS)
    assert len(BLOCKS) >= 6
    for needle in ("tk.token_sink", "on_token_will_expire", "on_token_expired", "tk.status_updates",
                   "tk.events", "tk.event_listener", "tk.forward_logs", "tk.Policy", "ReauthRequired"):
        assert needle in sources, needle


@pytest.mark.parametrize("source", [source for _, source in BLOCKS], ids=[name for name, _ in BLOCKS])
def test_readme_snippet_runs(source, backend, monkeypatch):
    namespace = readme_support.namespace(backend)
    monkeypatch.setattr(tk, "Keeper", readme_support.ScaledKeeper)
    root = logging.getLogger()
    handlers, tk_level = list(root.handlers), logging.getLogger("tokenkeeper").level
    try:
        with backend.faults(token_ttl_secs=readme_support.TOKEN_TTL_SECS):
            exec(compile(source, str(README), "exec"), namespace)  # noqa: S102 - our own README
    finally:
        tk.clear_log_sink()
        root.handlers[:] = handlers
        logging.getLogger("tokenkeeper").setLevel(tk_level)
    connection = namespace["connection"]
    if connection.applied:
        assert connection.duplicates == 0
        assert connection.expired_seconds == 0.0 and connection.stream_failures == 0
        assert len(connection.applied) >= 2, "the call saw a renewal reach the engine"
    for ws in namespace["sockets"]:
        kinds = [m["type"] for m in ws.sent]
        assert kinds[0] == "join" and "reauth" in kinds and ws.closed
        tokens = [m["token"] for m in ws.sent]
        assert len(set(tokens)) == len(tokens), "each token sent once"
