#!/usr/bin/env bash
# The mobile libraries must never compile the server-side token builders (`mint` feature).
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
for crate in tokenkeeper-uniffi tokenkeeper-frb; do
    tree=$(cargo tree -p "$crate" -e normal,build,features -i tokenkeeper --locked)
    features=$(grep -oE '(^| )tokenkeeper feature "[a-z_-]*"' <<<"$tree" | sort -u | tr '\n' ' ' || true)
    if grep -q '"mint"' <<<"$features"; then
        echo "$crate enables tokenkeeper's mint feature ($features)"; status=1
    else
        echo "$crate: tokenkeeper features: ${features:-none}"
    fi
done
exit $status
