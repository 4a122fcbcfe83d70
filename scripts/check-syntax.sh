#!/usr/bin/env bash
# Parses every hand-written Swift and Dart file with tree-sitter (scripts/check-syntax.py) and
# fails on a syntax error: nothing here compiles Swift or Dart. Installs the pinned grammars
# first (scripts/setup-tools.sh). Usage: scripts/check-syntax.sh [FILE...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
setup_line="$("$ROOT/scripts/setup-tools.sh" | tail -n1)"
venv="$(sed -n 's/.* venv=\([^ ]*\).*/\1/p' <<<"$setup_line")"
exec "$venv/bin/python" "$ROOT/scripts/check-syntax.py" "$@"
