"""Leases against upstream 0.9.0's client: watchers without a lease, holders with its token.

Our exporter requires leases (``--lease required``); upstream's `jmp shell` still gets in
(``GetStatus`` answers LEASE_READY) and watches; control needs the lease's token, which
upstream's client passes as its passphrase.
"""

from __future__ import annotations

import pytest
from interop import error_lines, out, output_lines

from jumpstarter_jupyter import connect

pytestmark = pytest.mark.upstream


@pytest.fixture(scope="module")
def leased_exporter(start_our_exporter) -> str:
    return start_our_exporter("demo", None, "--lease", "required")


def test_upstream_j_is_refused_while_someone_holds_the_board_and_allowed_with_the_token(
    jmp_shell, leased_exporter
):
    with connect(leased_exporter, purpose="bring-up") as holder:
        listed = jmp_shell(leased_exporter, "j", "--help")  # the shell gets in: GetStatus says LEASE_READY
        assert listed.returncode == 0, out(listed)
        refused = jmp_shell(leased_exporter, "j", "power", "on")
        assert refused.returncode == 1, out(refused)
        [error] = error_lines(refused)
        assert error.startswith("Error: held by ") and "(bring-up)" in error and "left" in error, out(refused)
        assert holder.power.state() is False
        readings = jmp_shell(leased_exporter, "j", "power", "read")  # read-only: a watcher may
        assert readings.returncode == 0 and len(output_lines(readings)) == 3, out(readings)
        allowed = jmp_shell(leased_exporter, "j", "power", "on", passphrase=holder.lease.token)
        assert allowed.returncode == 0, out(allowed)
        assert holder.power.state() is True
        holder.power.off()


def test_upstream_byte_streams_need_the_lease_too(jmp_shell, leased_exporter):
    """Upstream's client shows a refused byte stream only as a generic loss (README: Sharing a board)."""
    with connect(leased_exporter, purpose="console work") as holder:
        refused = jmp_shell(leased_exporter, "j", "serial", "pipe", stdin=b"\n", timeout=60)
        assert "Serial connection lost (broken resource)" in refused.stderr.decode(), out(refused)
        piped = jmp_shell(
            leased_exporter, "j", "serial", "pipe", stdin=b"\n", timeout=60, passphrase=holder.lease.token
        )
        assert piped.returncode == 0 and "connection lost" not in piped.stderr.decode(), out(piped)


def test_a_free_board_is_refused_to_upstream_clients_without_a_lease(jmp_shell, leased_exporter):
    refused = jmp_shell(leased_exporter, "j", "power", "on")
    assert refused.returncode == 1
    assert error_lines(refused) == ["Error: not leased: acquire a lease first"], out(refused)
