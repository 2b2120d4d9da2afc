#!/usr/bin/env bash
# Checks with TLC that a TLA+ trace written by `raft-sim replay SEED --tla-trace FILE`
# is a behaviour of spec/Raft.tla (through spec/RaftTrace.tla).
# Usage: spec/check-trace.sh FILE
# Exit 0: accepted. Exit 1: rejected (prints the first event the spec does not allow) or a
# safety invariant of the spec fails in a state the run passed through (prints which).
# Exit 2: TLC could not run.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
file="${1:?usage: check-trace.sh FILE}"
work="$(mktemp -d)"
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cp "$here/Raft.tla" "$here/RaftTrace.tla" "$here/RaftTrace.cfg" "$work/"
cp "$file" "$work/TraceData.tla"
( cd "$work" && "$here/tlc.sh" -deadlock -workers 1 -metadir "$work/meta" -config RaftTrace.cfg RaftTrace.tla ) >"$work/out" 2>&1
status=$?
events=$(grep -c '^\[n |-> ' "$work/TraceData.tla" || true)
if grep -q '"trace accepted"' "$work/out"; then
  states=$(grep -o '[0-9,]* distinct states found' "$work/out" | tail -1)
  echo "accepted: $events events ($states)"
  exit 0
fi
if grep -q 'Invariant .* is violated' "$work/out"; then
  # A state the run passed through breaks a safety property of the spec.
  last=$(grep -o '<<"matched", [0-9]*>>' "$work/out" | grep -o '[0-9]*' | sort -n | tail -1)
  echo "violated: $(grep -o 'Invariant [A-Za-z]* is violated' "$work/out" | head -1) while matching event $(( ${last:-0} + 1 )) of $events"
  exit 1
fi
if ! grep -q 'Model checking completed\|distinct states found' "$work/out" || grep -q '^Error' "$work/out"; then
  echo "TLC failed:" >&2
  grep -v '^[0-9]*\. Line' "$work/out" | tail -30 >&2
  exit 2
fi
last=$(grep -o '<<"matched", [0-9]*>>' "$work/out" | grep -o '[0-9]*' | sort -n | tail -1)
last=${last:-0}
bad=$((last + 1))
echo "rejected: event $bad of $events is not a step the spec allows (events 1..$last matched)"
grep '^\[n |-> ' "$work/TraceData.tla" | sed -n "${bad}p" | cut -c1-2000
exit 1
