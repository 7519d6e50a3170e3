#!/usr/bin/env bash
# What the published crates ship (called by .ci/run): `cargo package --list`
# of each, in publish order. Fails if a package lists anything users do not
# need (CI scripts, benches, tests and their fixtures, examples, the
# benchmark report or its plot), or lacks its README (the facade's is also
# its crate docs' doc-tests) or a license file.
set -euo pipefail
cd "$(dirname "$0")/.."

failed=0
for crate in parallelizer-macros parallelizer-core parallelizer; do
    # --allow-dirty only lists; the publish dry run in .ci/run is the strict one.
    list=$(timeout 300 cargo package --list --allow-dirty -p "$crate" 2>/dev/null)
    echo "-- $crate: $(wc -l <<<"$list") files: $(tr '\n' ' ' <<<"$list")"
    if bad=$(grep -E '^(\.ci/|benches/|tests/|examples/|target/)|(^|/)BENCHMARKS\.md$|\.svg$' <<<"$list"); then
        echo "FAIL: $crate ships files users do not need:" >&2
        echo "$bad" >&2
        failed=1
    fi
    for need in README.md LICENSE-MIT LICENSE-APACHE Cargo.toml; do
        grep -qx "$need" <<<"$list" || { echo "FAIL: $crate does not ship $need" >&2; failed=1; }
    done
done
((failed == 0)) || exit 1
echo "package contents: ok"
