# Sourced by the foreign-language test scripts: starts the reference backend on an ephemeral
# loopback port and exports TK_SERVER_URL and TK_ADMIN_KEY for the tests.
#   start_reference_server SERVER_BINARY PYTHON
# The server is stopped by the EXIT trap this installs. Requires a `fail MESSAGE` function.

start_reference_server() {
    local binary=$1 py=$2
    SERVER_LOG="$(mktemp)"
    SERVER_OUT="$(mktemp)"
    "$binary" --addr 127.0.0.1:0 --no-rate-limit >"$SERVER_OUT" 2>"$SERVER_LOG" &
    SERVER_PID=$!
    trap stop_reference_server EXIT
    for _ in $(seq 1 100); do
        [[ -s "$SERVER_OUT" ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$SERVER_LOG" >&2; fail "tokenkeeper-server exited"; }
        sleep 0.1
    done
    local banner
    banner="$(head -n1 "$SERVER_OUT")"
    [[ -n "$banner" ]] || fail "tokenkeeper-server printed no banner"
    TK_SERVER_URL="$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["listening"])' "$banner")"
    TK_ADMIN_KEY="$("$py" -c 'import json,sys; print(json.loads(sys.argv[1])["admin_key"])' "$banner")"
    export TK_SERVER_URL TK_ADMIN_KEY
}

stop_reference_server() {
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    rm -f "$SERVER_LOG" "$SERVER_OUT"
}
