#!/usr/bin/env bash
# Create (or reuse) a separate venv holding upstream Jumpstarter 0.9.0, the interoperability
# peer: `jmp`, `j` and its exporter with the core drivers. It stays apart from the project's
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
      jumpstarter-driver-network jumpstarter-driver-composite jumpstarter-driver-opendal)
stamp="$dir/.upstream-$version"
if [[ -f $stamp && -x $dir/bin/jmp ]]; then
  echo "$dir"
  exit 0
fi
mkdir -p "$(dirname "$dir")"
python3 -m venv "$dir"
"$dir/bin/python" -m pip install --quiet --disable-pip-version-check "${pkgs[@]/%/==$version}" >&2
"$dir/bin/python" -c 'import jumpstarter_driver_power, jumpstarter_driver_pyserial, jumpstarter_driver_network' >&2
touch "$stamp"
echo "$dir"
