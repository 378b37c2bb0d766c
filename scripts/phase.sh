#!/usr/bin/env bash
# phase.sh — runs one phase of a long command and prints its wall time, so every CI log shows
# where the time goes.
#
#   scripts/phase.sh NAME COMMAND [ARG...]
#
# Prints `phase NAME: N s (exit C)` when COMMAND ends, and appends the same line to $PHASE_LOG when
# that is set (.ci/run prints the whole list at the end). Exits with COMMAND's status.
set -uo pipefail
name=${1:?usage: phase.sh NAME COMMAND [ARG...]}
shift
started=$SECONDS
echo "phase $name: started $(date -u +%H:%M:%S)" >&2
"$@"
status=$?
line=$(printf 'phase %-22s %5d s (exit %d)' "$name:" "$((SECONDS - started))" "$status")
echo "$line" >&2
[ -n "${PHASE_LOG:-}" ] && echo "$line" >>"$PHASE_LOG"
exit "$status"
