#!/bin/sh
# Open MPI's launch agent (plm_rsh_agent) for a simulated second node, used
# by .ci/mpi.sh: instead of ssh-ing to host $1 it runs the command here, in
# a UTS namespace whose host name is $1, so the ranks it starts see another
# node's name (shared arrays: README "Shared memory").
host=$1
shift
exec unshare --uts sh -c 'hostname "$0" && exec sh -c "$*"' "$host" "$@"
