#!/usr/bin/env bash
# Runs one fuzz target to a number of executions on the stable toolchain, then minimises its
# corpus in place (the minimised corpus is committed, so the next run starts where this ended).
#
#   fuzz/run.sh TARGET [RUNS]        # RUNS defaults to 10000000
#
# Needs `cargo install cargo-fuzz` (a crates.io package, builds on stable). cargo-fuzz passes
# `-Z` sanitizer flags, which stable rustc accepts only with RUSTC_BOOTSTRAP=1; the stable
# toolchain ships the ASan runtime, so the targets run with AddressSanitizer, debug assertions
# and overflow checks. The log (with libFuzzer's `cov:`/`ft:` figures) goes to
# fuzz/logs/TARGET.log, which is not committed.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh TARGET [RUNS]}
runs=${2:-10000000}
export RUSTC_BOOTSTRAP=1
mkdir -p "corpus/$target" logs

# Fresh executions from the committed corpus (plus the seeds, when present).
seeds=()
[ -d "seeds/$target" ] && seeds=("seeds/$target")
cargo fuzz run -O -a "$target" "corpus/$target" "${seeds[@]}" -- \
    -runs="$runs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    > "logs/$target.log" 2>&1

# Minimise in place (cargo fuzz cmin merges the corpus into a fresh copy of its directory).
before=$(find "corpus/$target" -type f | wc -l)
cargo fuzz cmin -O -a "$target" "corpus/$target" > "logs/$target.cmin.log" 2>&1
after=$(find "corpus/$target" -type f | wc -l)

grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$target.log" | tail -1 || true
grep -E '^stat::' "logs/$target.log" || true
echo "corpus: $before files before minimising, $after after ($(du -sh "corpus/$target" | cut -f1))"
