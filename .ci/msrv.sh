#!/usr/bin/env bash
# MSRV check, called by .ci/run: the `rust-version` we declare must be at
# least the highest `rust-version` of every package that a NEW user's build
# resolves, not only of our committed Cargo.lock (a user's first build
# resolves afresh and gets the newest semver-compatible versions).
#
# A throw-away downstream crate (edition 2021, no lockfile, no rust-version,
# so cargo's default resolver picks the newest versions whatever their
# rust-version) depends on this repository by path, once with default
# features and once with `mpi`. `cargo metadata` resolves without building,
# so this needs neither MPI nor libclang. Every resolved package's declared
# `rust-version` is compared with ours; the offenders are listed and the
# script fails. Needs jq (installed with apt if missing, as CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

command -v jq >/dev/null 2>&1 || {
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends jq
}

# Sorts dotted versions numerically; prints the highest.
highest() { sort -t. -k1,1n -k2,2n -k3,3n | tail -n1; }
# 1.85 and 1.85.0 are the same version.
norm() { awk -F. '{ printf "%d.%d.%d\n", $1, $2, ($3 == "" ? 0 : $3) }'; }

ours=$(timeout 120 cargo metadata --format-version 1 --no-deps --offline 2>/dev/null \
    || timeout 120 cargo metadata --format-version 1 --no-deps)
ours=$(jq -r '.packages[] | select(.name == "parallelizer") | .rust_version' <<<"$ours")
[[ -n $ours && $ours != null ]] || { echo "FAIL: parallelizer declares no rust-version" >&2; exit 1; }
echo "declared rust-version: $ours"
ours_n=$(norm <<<"$ours")

probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
mkdir "$probe/src"
echo 'pub use parallelizer;' >"$probe/src/lib.rs"

failed=0
for features in "" "mpi"; do
    cat >"$probe/Cargo.toml" <<EOF
[package]
name = "msrv-probe"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
parallelizer = { path = "$root"${features:+, features = [\"$features\"]} }

[workspace]
EOF
    rm -f "$probe/Cargo.lock"
    # "allow": what cargo does by default for a resolver-2 crate, whatever
    # the caller's environment says.
    meta=$(cd "$probe" && CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=allow \
        timeout 300 cargo metadata --format-version 1 --quiet)
    # Packages in the resolve (all platforms: Windows and macOS users count),
    # minus the probe and our own crates.
    table=$(jq -r '
        (.resolve.nodes | map(.id)) as $ids
        | .packages[]
        | select(.id as $id | $ids | index($id))
        | select(.name != "msrv-probe")
        | select(.source != null)
        | "\(.name) \(.version) \(.rust_version // "-")"' <<<"$meta")
    n=$(wc -l <<<"$table")
    declared=$(awk '$3 != "-"' <<<"$table")
    max=$(awk '{ print $3 }' <<<"$declared" | norm | highest)
    label=${features:-default features}
    echo "-- $label: $n registry packages resolved, $(wc -l <<<"$declared") declare a rust-version, highest $max"
    offenders=$(while read -r name version rv; do
        [[ $rv == - ]] && continue
        if [[ $(printf '%s\n%s\n' "$(norm <<<"$rv")" "$ours_n" | highest) != "$ours_n" ]]; then
            echo "   $name $version requires rustc $rv"
        fi
    done <<<"$table")
    if [[ -n $offenders ]]; then
        echo "FAIL ($label): these need a newer rustc than our rust-version $ours:" >&2
        echo "$offenders" >&2
        failed=1
    fi
done

((failed == 0)) || exit 1
echo "MSRV check passed: rust-version $ours covers every dependency of a fresh resolve"

# If the toolchain of that version is installed (CI does not download one),
# also compile the probe with it: the metadata shows what dependencies
# declare, this shows our own code builds there too.
if rustup run "$ours" cargo --version >/dev/null 2>&1; then
    want=default
    command -v mpicc >/dev/null 2>&1 && want="default mpi"
    for features in $want; do
        [[ $features == default ]] && features=""
        sed -i "s|^parallelizer = .*|parallelizer = { path = \"$root\"${features:+, features = [\"$features\"]} }|" "$probe/Cargo.toml"
        rm -f "$probe/Cargo.lock"
        echo "-- cargo +$ours check of the probe (${features:-default features})"
        (cd "$probe" && CARGO_TARGET_DIR="$probe/target" timeout 900 cargo "+$ours" check --quiet)
    done
    echo "the probe builds with rustc $ours"
else
    echo "(toolchain $ours not installed: the probe was not compiled with it)"
fi
