"""Keepalive (wire §1, trap §16.1): upstream clients ping every 20 s, even on an idle connection.

A gRPC server at default settings answers with GOAWAY "too_many_pings" after about 100 s and
every open stream dies. The real check holds a serial stream idle for longer than that; it is
started at the beginning of the suite (conftest ``idle_stream``) and checked last, so its idle
time overlaps the other tests instead of adding to ``make test``.
"""

from __future__ import annotations

import subprocess

import pytest
from interop import IDLE_SECONDS

from jumpstarter_jupyter.exporter.server import SERVER_OPTIONS

pytestmark = pytest.mark.upstream

UPSTREAM_PING_INTERVAL_MS = 20_000


def test_exporter_permits_pings_every_20_s_without_calls():
    options = dict(SERVER_OPTIONS)
    assert options["grpc.keepalive_permit_without_calls"] == 1
    assert options["grpc.http2.min_ping_interval_without_data_ms"] <= UPSTREAM_PING_INTERVAL_MS


@pytest.mark.last
def test_idle_stream_survives_upstream_keepalive_pings(idle_stream):
    try:
        idle_stream.process.wait(timeout=IDLE_SECONDS + 120)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the idle stream client did not finish:\n{idle_stream.log()[-3000:]}")
    log = idle_stream.log()
    assert idle_stream.process.returncode == 0, log[-3000:]
    assert "echo before idle: before" in log and "echo after idle: after" in log, log[-3000:]
