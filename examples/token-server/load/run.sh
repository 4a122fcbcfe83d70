#!/usr/bin/env bash
# Load test of the RTC token endpoint with the access checks on (see ../README.md).
# Usage: examples/token-server/load/run.sh [vendor=agora] [seconds=10] [connections=64]
# State: in-memory SQLite by default; TOKENKEEPER_DB=state.sqlite or =postgres://… picks another
# store (use a fresh PostgreSQL database: the script creates the user 'load').
set -euo pipefail
VENDOR="${1:-agora}"; SECS="${2:-10}"; CONNS="${3:-64}"
ROOT="$(cd "$(dirname "$0")/../../.." && pwd)"
BIN="$ROOT/target/release/tokenkeeper-server"
ADDR=127.0.0.1:18080
ADMIN=adm_load_test_admin_key
USER_KEY=tku_load_test_user_key
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install -y wrk)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "build first: cargo build --release -p tokenkeeper-server" >&2; exit 2; }
# Rate limiting stays on, with a per-user limit above the offered load, so every request
# still passes through the limiter; the load user is a single user.
echo "load: vendor $VENDOR, ${SECS}s, $CONNS connections, store ${TOKENKEEPER_DB:-SQLite in memory}, load average $(cut -d' ' -f1-3 /proc/loadavg)" | sed -E 's#(postgres(ql)?://[^:@/]*):[^@]*@#\1:***@#'
"$BIN" --addr "$ADDR" --admin-key "$ADMIN" --rate-limit 1000000 --rate-burst 1000000 >/dev/null 2>/tmp/tk-load-server.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://$ADDR/healthz" >/dev/null && break; sleep 0.1; done
curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d "{\"id\":\"load\",\"api_key\":\"$USER_KEY\"}" "http://$ADDR/admin/users" >/dev/null
curl -sf -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
  -d '{"channel":"load-1","owner":"load"}' "http://$ADDR/admin/streams" >/dev/null
TK_USER_KEY="$USER_KEY" TK_VENDOR="$VENDOR" wrk -t1 -c"$CONNS" -d"${SECS}s" --latency \
  -s "$ROOT/examples/token-server/load/rtc_token.lua" "http://$ADDR/api/v1/rtc/token"
curl -sf -H "Authorization: Bearer $ADMIN" "http://$ADDR/admin/stats"; echo
curl -sf -H "Authorization: Bearer $ADMIN" "http://$ADDR/admin/audit?limit=1"; echo
