#!/bin/sh
# Refresh the intersphinx inventories the docs resolve other projects' names with
# (docs/_inventories/*.inv, committed: `make docs` never uses the network). They come from
# Debian's documentation packages, downloaded (not installed) and unpacked in a temp folder.
set -eu
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download python3.11-doc python-can-doc python-click-doc python-traitlets-doc)
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
html=$work/root/usr/share/doc
cp "$html/python3.11/html/objects.inv" docs/_inventories/python.inv
cp "$html/python3-can/html/objects.inv" docs/_inventories/python-can.inv
cp "$html/python-click-doc/html/objects.inv" docs/_inventories/click.inv
cp "$html/python-traitlets-doc/html/objects.inv" docs/_inventories/traitlets.inv
ls -l docs/_inventories
