#!/usr/bin/env bash
# Fuzzing (issue 11): every cargo-fuzz target of fuzz/ (the processes
# backend's frame reader, the launch-environment parser) runs for
# FUZZ_SECONDS (default 60) from its seed corpus (fuzz/seeds/, valid frames
# and a valid launch environment, which fuzz/src/make_seeds.rs writes).
# Fails on any crash, panic, out-of-memory (-rss_limit_mb=2048, which also
# bounds single allocations) or timeout (-timeout=10 s per input), and
# prints the number of executions of each target.
#
# cargo-fuzz needs a nightly compiler (sanitizer and coverage flags). The
# nightly toolchain comes from rustup's servers, which CI may not reach: if
# `rustup toolchain install nightly` fails, the stable compiler runs with
# RUSTC_BOOTSTRAP=1, which unlocks the same flags. cargo-fuzz itself comes
# from crates.io (`cargo install cargo-fuzz`).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs=${FUZZ_SECONDS:-60}

toolchain=(+nightly)
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    if ! timeout 600 rustup toolchain install nightly --profile minimal >/dev/null 2>&1; then
        echo "fuzz: no nightly toolchain (rustup could not install one): stable with RUSTC_BOOTSTRAP=1"
        toolchain=()
        export RUSTC_BOOTSTRAP=1
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    timeout 1200 cargo install cargo-fuzz --locked
fi
cargo fuzz --version

# The seeds are what make_seeds writes (a change of the frame format shows
# up here as a diff).
timeout 600 cargo "${toolchain[@]}" run --quiet --bin make_seeds
timeout 1800 cargo "${toolchain[@]}" fuzz build -O

status=0
for target in $(cargo "${toolchain[@]}" fuzz list); do
    # Only the fuzz targets (make_seeds is a bin of the crate too).
    [[ -f fuzz_targets/$target.rs ]] || continue
    corpus=target/corpus/$target
    mkdir -p "$corpus"
    log=target/fuzz-$target.log
    echo "-- $target: ${secs} s"
    set +e
    timeout $((secs + 300)) cargo "${toolchain[@]}" fuzz run -O "$target" "$corpus" "seeds/$target" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}' | tail -n 1)
    echo "   executions: ${runs:-?}, exit status $rc"
    if ((rc != 0)); then
        grep -E 'ERROR|panicked|out-of-memory|timeout|deadly signal' "$log" | head -n 5
        grep -A2 -E '^Reproduce with' "$log" || true
        ls artifacts/"$target" 2>/dev/null | sed 's/^/   finding: /'
        status=1
    fi
done
exit $status
