#!/usr/bin/env python3
"""Syntax gate for the code nothing on this machine compiles: every hand-written Swift and Dart
file of the repository is parsed with tree-sitter grammars, and any syntax error fails the gate.

Generated files are left to their regeneration checks (scripts/gen-uniffi.sh --check,
scripts/check-frb.sh), and so is the vendored cargokit (flutter/cargokit, compared with
flutter_rust_bridge's template by scripts/check-packaging.sh).

Before the files, the gate parses one broken snippet per language and fails if the grammar does
not report it, so a grammar that stopped reporting errors cannot pass silently.

Run through scripts/check-syntax.sh, which installs the pinned grammars (scripts/setup-tools.sh).
Usage: check-syntax.py [FILE...]   (default: every hand-written .swift and .dart file in git)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tree_sitter
import tree_sitter_dart
import tree_sitter_swift

ROOT = Path(__file__).resolve().parent.parent

LANGUAGES = {
    ".swift": tree_sitter.Language(tree_sitter_swift.language()),
    ".dart": tree_sitter.Language(tree_sitter_dart.language()),
}

# Checked by regeneration or by comparison with their source, not parsed here.
GENERATED = (
    "swift/Sources/TokenKeeper/TokenKeeper.swift",  # uniffi-bindgen
    "flutter/lib/src/rust/",  # flutter_rust_bridge_codegen
    "flutter/cargokit/",  # flutter_rust_bridge's template, vendored
)

# One broken snippet per language: the gate must see an error in each.
BROKEN = {
    ".swift": b"func renew(session: Session) {\n    let token = \n}\n",
    ".dart": b"void main() {\n  final tokens = [1, 2;\n}\n",
}


def syntax_errors(source: bytes, suffix: str) -> list[tuple[int, int, str]]:
    """(line, column, what) of every ERROR or MISSING node, 1-based."""
    tree = tree_sitter.Parser(LANGUAGES[suffix]).parse(source)
    found = []
    stack = [tree.root_node]
    while stack:
        node = stack.pop()
        if node.is_missing:
            found.append((node.start_point[0] + 1, node.start_point[1] + 1, f"missing {node.type!r}"))
        elif node.type == "ERROR":
            # An ERROR node can span the whole region the parser could not make sense of; a
            # nested ERROR or MISSING node pins the place down when there is one.
            inner = [c for c in node.children if c.type == "ERROR" or c.is_missing or c.has_error]
            if inner:
                stack.extend(reversed(inner))
            else:
                end = node.end_point[0] + 1
                span = f" (to line {end})" if end > node.start_point[0] + 1 else ""
                found.append((node.start_point[0] + 1, node.start_point[1] + 1, f"unexpected syntax{span}"))
        elif node.has_error:
            stack.extend(reversed(node.children))
    return sorted(found)


def hand_written_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", "*.swift", "*.dart"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout.split()
    return [ROOT / rel for rel in sorted(set(listed))
            if not rel.startswith(GENERATED) and (ROOT / rel).is_file()]


def main(argv: list[str]) -> int:
    for suffix, snippet in BROKEN.items():
        if not syntax_errors(snippet, suffix):
            print(f"syntax: FAILED: the {suffix} grammar reports no error in a broken snippet", file=sys.stderr)
            return 1

    files = [Path(a).resolve() for a in argv] if argv else hand_written_files()
    counts = {suffix: 0 for suffix in LANGUAGES}
    bad = 0
    for path in files:
        suffix = path.suffix
        if suffix not in LANGUAGES:
            print(f"syntax: FAILED: {path}: not a Swift or Dart file", file=sys.stderr)
            return 1
        counts[suffix] += 1
        source = path.read_bytes()
        errors = syntax_errors(source, suffix)
        if errors:
            bad += 1
            lines = source.decode("utf-8", "replace").splitlines()
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            for line, column, what in errors[:5]:
                text = lines[line - 1].strip() if line <= len(lines) else ""
                print(f"{shown}:{line}:{column}: {what}: {text}", file=sys.stderr)
    summary = ", ".join(f"{n} {suffix[1:]}" for suffix, n in counts.items())
    if bad:
        print(f"syntax: FAILED: {bad} file(s) with syntax errors (of {summary})", file=sys.stderr)
        return 1
    if not files:
        print("syntax: FAILED: no Swift or Dart file found", file=sys.stderr)
        return 1
    print(f"syntax: ok: {summary} file(s) parse without error (tree-sitter {tree_sitter.__version__})"
          if hasattr(tree_sitter, "__version__") else f"syntax: ok: {summary} file(s) parse without error")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
