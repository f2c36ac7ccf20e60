#!/usr/bin/env bash
# Create (or reuse) a separate venv holding upstream Jumpstarter 0.9.0, the interoperability
# peer: `jmp`, `j` and its exporter with the core drivers, plus the community drivers our hosting
# tests run (jumpstarter_jupyter/hosted). It stays apart from the project's
# venv on purpose: the two sides meet only over gRPC (their generated stubs register the same
# protobuf names and cannot share a process).
#
#   scripts/setup-upstream-peer.sh [DIR]    # prints DIR; DIR/bin/jmp and DIR/bin/j are ready
#
# Default DIR: ${XDG_CACHE_HOME:-~/.cache}/jumpstarter-jupyter/upstream-0.9.0 (kept across runs).
set -euo pipefail
version=0.9.0
dir=${1:-${UPSTREAM_PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/jumpstarter-jupyter/upstream-$version}}
pkgs=(jumpstarter-cli jumpstarter-driver-power jumpstarter-driver-pyserial
      jumpstarter-driver-network jumpstarter-driver-composite jumpstarter-driver-opendal
      jumpstarter-driver-can jumpstarter-driver-gpiod jumpstarter-driver-shell jumpstarter-driver-http
      jumpstarter-driver-tftp jumpstarter-driver-yepkit)
# The stamp holds the package list: a cache made from a shorter list gets the new packages
# installed into the same venv (never recreated: other checkouts may be using it right now).
stamp="$dir/.upstream-$version"
want="${pkgs[*]}"
if [[ -x $dir/bin/jmp && -f $stamp && $(<"$stamp") == "$want" ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$dir"
exec 9>"$dir.lock"  # one installer at a time; a second one waits, then finds the work done
flock 9
if ! [[ -x $dir/bin/jmp && -f $stamp && $(<"$stamp") == "$want" ]]; then
  [[ -x $dir/bin/python ]] || python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${pkgs[@]/%/==$version}" >&2
  "$dir/bin/python" -c 'import jumpstarter_driver_power, jumpstarter_driver_pyserial, jumpstarter_driver_network, jumpstarter_driver_can' >&2
  echo "$want" >"$stamp"
fi
echo "$dir"
