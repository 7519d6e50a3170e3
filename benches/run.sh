#!/usr/bin/env bash
# The benchmark suite in one command: builds the bench crate (with the MPI
# rows when an MPI toolchain is there), makes the Python venv for the
# anchors, runs everything and writes BENCHMARKS.md + benches/bandwidth.svg.
#
#   bash benches/run.sh            # full suite, 12-14 minutes on 2 cores
#   bash benches/run.sh --quick    # smoke test, about a minute; uses the venv only if it exists
#
# Environment: BENCH_MPI=0 to leave MPI out, BENCH_PYTHON=0 to leave Python out.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for a in "$@"; do [[ $a == --quick ]] && quick=1; done

features=()
if [[ ${BENCH_MPI:-1} != 0 ]] && command -v mpicc >/dev/null && command -v mpirun >/dev/null; then
    features=(--features mpi)
else
    echo "run.sh: no MPI toolchain (mpicc, mpirun) or BENCH_MPI=0: MPI rows will be n/a" >&2
fi

venv=benches/python/.venv
py_args=()
if [[ ${BENCH_PYTHON:-1} != 0 ]]; then
    if [[ ! -x $venv/bin/python && $quick == 0 ]]; then
        echo "run.sh: creating $venv (numpy, mpi4py from PyPI)" >&2
        if python3 -m venv "$venv" && "$venv/bin/pip" install -q --upgrade pip \
            && "$venv/bin/pip" install -q numpy; then
            # mpi4py builds against the system MPI (needs its headers: libopenmpi-dev
            # or libmpich-dev); failing that, the wheel that bundles MPICH.
            if ! "$venv/bin/pip" install -q mpi4py; then
                echo "run.sh: mpi4py from PyPI did not install; trying mpi4py + the mpich wheel" >&2
                "$venv/bin/pip" install -q mpich mpi4py || echo "run.sh: no mpi4py: mpi4py rows will be n/a" >&2
            fi
        else
            echo "run.sh: could not create the venv: Python rows will be n/a" >&2
            rm -rf "$venv"
        fi
    fi
    if [[ -x $venv/bin/python ]]; then
        py_args=(--python "$PWD/$venv/bin/python")
    elif [[ $quick == 1 ]]; then
        echo "run.sh: --quick does not create the venv; Python rows will be n/a" >&2
    fi
fi

cargo build --release -p parallelizer-bench --bins "${features[@]}"
exec "${CARGO_TARGET_DIR:-target}/release/suite" "$@" "${py_args[@]}"
