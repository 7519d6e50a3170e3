#!/usr/bin/env bash
# The MPI suite (issue 5), called by .ci/run. Needs root for apt (as CI is).
#
# 1. Installs Open MPI and libclang (rsmpi's bindgen) if missing.
# 2. Builds with `--features mpi`; runs the backend's unit tests.
# 3. Runs the test target tests/mpi_suite.rs (harness = false) under
#    `mpirun -n 1..4` (oversubscribed), in the served model
#    (`#[parallelizer::main]` guard) and in classic SPMD.
# 4. A host program that owns MPI uses the backend next to its own calls.
#    Fault tests: a panic on rank 1 of 4 (and on rank 0 outside a region)
#    must end the job with a non-zero status in under 5 s, with the rank and
#    the message on stderr.
# 5. The McUtils map workload under `mpirun -n 4` must print the serial
#    checksum (first 45, last 72, total 4,670,265,600: McUtils'
#    test_MapMultiprocessing, ci/tests/ParallelizersTests.py), as must the
#    same binary on `processes:4`.
set -euo pipefail
cd "$(dirname "$0")/.."

# Output of the runs, private to this run (another checkout may run this too).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

need=()
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Open MPI refuses root without these; more ranks than cores needs the last.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
unset RUST_BACKTRACE

say "build (--features mpi)"
cargo build --features mpi --examples
cargo test -p parallelizer-core --features mpi --lib backend::mpi
# The suite's test binary, as cargo reports it (target/debug/deps/mpi_suite-HASH).
suite=$(cargo test --features mpi --test mpi_suite --no-run --message-format=json \
    | grep '"reason":"compiler-artifact"' | grep '"name":"mpi_suite"' | grep '"kind":\["test"\]' \
    | sed -E 's/.*"executable":"([^"]+)".*/\1/' | tail -n 1) || fail "building the mpi_suite test"
[[ -n $suite && -x $suite ]] || fail "no mpi_suite test binary in cargo's output (got '$suite')"
echo "suite: $suite"

say "SPMD suite"
for n in 1 2 3 4; do
    for serve in 1 0; do
        model=$([[ $serve == 1 ]] && echo served || echo spmd)
        echo "-- mpirun -n $n ($model)"
        out=$(PARALLELIZER_MPI_SERVE=$serve timeout 300 mpirun -n "$n" "$suite" 2>"$tmp/mpi_suite.err") \
            || { echo "$out"; cat "$tmp/mpi_suite.err" >&2; fail "mpi_suite -n $n $model exited with $?"; }
        echo "$out" | grep -E '^(FAIL|[0-9]+ passed)'
        echo "$out" | grep -qE '^[0-9]+ passed, 0 failed$' || fail "mpi_suite -n $n $model"
    done
done

say "host program that owns MPI (rsmpi initialize/finalize)"
for n in 1 2 4; do
    timeout 120 mpirun -n "$n" target/debug/examples/mpi_host | grep -q 'host-initialized MPI: ok' \
        || fail "mpi_host -n $n"
    echo "-- mpirun -n $n: ok"
done

say "fault: a panic on one rank of 4 ends the job"
# serve model, where the panic happens, the rank that panics
for fault in "1 region 1" "0 region 1" "0 main 1" "1 main0 0"; do
    read -r serve where rank <<<"$fault"
    start=$(date +%s%N)
    set +e
    PARALLELIZER_MPI_SERVE=$serve timeout 60 mpirun -n 4 target/debug/examples/mpi_fault "$where" \
        >"$tmp/mpi_fault.out" 2>"$tmp/mpi_fault.err"
    status=$?
    set -e
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    echo "-- serve=$serve panic in $where on rank $rank: status $status after ${ms} ms"
    grep 'parallelizer: MPI rank' "$tmp/mpi_fault.err" || true
    [[ $status != 0 && $status != 124 ]] || fail "fault $where: status $status (0 = not aborted, 124 = hung)"
    ((ms < 5000)) || fail "fault $where: took ${ms} ms"
    grep -q "MPI rank $rank of 4 panicked: injected failure" "$tmp/mpi_fault.err" \
        || { cat "$tmp/mpi_fault.err" >&2; fail "fault $where: rank and message not on stderr"; }
done

say "McUtils map workload (12 choose 9, 9! permutations each)"
cargo build --release --features mpi --example mpi
serial=$(target/release/examples/mpi 12 9 serial)
echo "$serial"
parallel=$(timeout 600 mpirun -n 4 target/release/examples/mpi 12 9 mpi)
echo "$parallel"
want='checksum: n=12 r=9 count=79833600 first=45 last=72 total=4670265600'
[[ $(grep checksum <<<"$serial") == "$want"* ]] || fail "serial checksum"
[[ $(grep checksum <<<"$parallel") == $(grep checksum <<<"$serial") ]] || fail "mpi checksum differs from serial"
processes=$(target/release/examples/mpi 12 9 processes:4)
echo "$processes"
[[ $(grep checksum <<<"$processes") == $(grep checksum <<<"$serial") ]] || fail "processes checksum differs from serial"
small_serial=$(target/release/examples/mpi 4 2 serial | grep checksum)
small_mpi=$(timeout 60 mpirun -n 3 target/release/examples/mpi 4 2 mpi | grep checksum)
[[ $small_serial == "$small_mpi" ]] || fail "small workload: $small_mpi vs $small_serial"

say "MPI suite passed"
