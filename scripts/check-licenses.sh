#!/usr/bin/env bash
# The dependency license gate: every crate in the workspace's graph (all features, all targets,
# dev-dependencies included) must carry a license that deny.toml allows.
#   1. `cargo fetch --locked` makes sure every crate of Cargo.lock is in the local cache (the
#      graph includes crates of other platforms, which no build here downloads);
#   2. `cargo deny --offline --locked check licenses` then needs no network: the license check
#      reads the manifests and license files in the cache, no advisory database.
# cargo-deny comes from scripts/setup-tools.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo fetch --locked --quiet
exec cargo deny --offline --locked check licenses
