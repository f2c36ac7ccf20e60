"""Leases on real exporters in their own processes: holders, watchers, the queue, expiry, hooks.

Lease periods are short here (heartbeat 3 s) so a lost holder is noticed soon, yet a loaded
machine that delays a client's beats (one a second) does not end its lease; every wait is on
a condition with a generous deadline.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

import jumpstarter_jupyter as jj
from jumpstarter_jupyter import JumpstarterError, LeaseRequired, LeaseTimeout
from jumpstarter_jupyter.protocol.v1 import lease_pb2
from support import start_exporter, wait_for

DEADLINE = 60
CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power:
    type: MockPower
lease:
  required: true
  heartbeat: 3s
  warning: {warning}
  admin_passphrase_file: admin.pass
"""
AFTER_LEASE = """\
hooks:
  afterLease:
    script: |
      echo "ending the lease of $CLIENT_NAME"
      j power off
      echo "$CLIENT_NAME" >> {marker}
"""


class Board:
    """An exporter process with leases required, and what the test needs around it."""

    def __init__(self, directory: Path, hooks: str = "", warning: str = "60s"):
        self.directory = directory
        (directory / "admin.pass").write_text("root of trust\n")
        self.marker = directory / "after-lease"
        config = directory / "board.yaml"
        config.write_text(CONFIG.format(warning=warning) + hooks.format(marker=self.marker))
        self.log = directory / "exporter.log"
        self.address = f"unix:{directory / 'board.sock'}"
        self.process = start_exporter("run", config, "--socket", directory / "board.sock", log=str(self.log))
        self.clients: list = []

    def connect(self, **options):
        client = jj.connect(self.address, **options)
        self.clients.append(client)
        return client

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "jumpstarter_jupyter", *args],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )

    def status(self) -> lease_pb2.LeaseStatus:
        watcher = self.connect(lease=False)
        return watcher.connection.lease_status()

    def ended_leases(self) -> list[str]:
        return self.marker.read_text().split() if self.marker.exists() else []

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=DEADLINE)


@pytest.fixture
def board(tmp_path):
    boards = []

    def start(**options) -> Board:
        boards.append(
            Board(tmp_path / f"board{len(boards)}", **options) if boards else Board(tmp_path, **options)
        )
        return boards[-1]

    yield start
    for each in boards:
        each.stop()


def test_the_holder_controls_and_a_watcher_reads_but_is_refused_with_the_holder_named(board):
    b = board()
    holder = b.connect(purpose="bring-up")
    watcher = b.connect(lease=False)
    holder.power.on()
    assert watcher.power.state() is True  # read-only methods need no lease
    assert len(list(watcher.power.read())) == 2
    with pytest.raises(LeaseRequired, match=r"dut\.power\.on: held by \S+@\S+ \(bring-up\), \d+ (h|min)"):
        watcher.power.on()
    status = b.cli("lease", "status", "--endpoint", b.address)
    assert status.returncode == 0
    assert "leases required" in status.stdout and "(bring-up), unverified" in status.stdout
    holder.lease.release()
    with pytest.raises(LeaseRequired, match="not leased: acquire a lease first"):
        holder.power.off()  # a released holder is a watcher


def test_one_command_leases_of_j_and_the_error_while_someone_holds_the_board(board):
    b = board(hooks=AFTER_LEASE)
    done = b.cli("j", "--endpoint", b.address, "power", "on")
    assert done.returncode == 0, done.stderr
    assert b.status().HasField("lease") is False and b.ended_leases() == []  # no hooks for one command
    b.connect(purpose="soak test")
    refused = b.cli("j", "--endpoint", b.address, "power", "off")
    assert refused.returncode == 1
    assert (
        "no lease on" in refused.stderr
        and "now: held by" in refused.stderr
        and "(soak test)" in refused.stderr
    )


HOLDER = """
import sys, jumpstarter_jupyter as jj
dut = jj.connect(sys.argv[1], purpose="soak")
dut.power.on()
print("on", flush=True)
sys.stdin.read()
"""


def test_a_killed_holder_loses_the_lease_after_lease_runs_and_the_first_waiter_gets_the_board(board):
    b = board(hooks=AFTER_LEASE)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, b.address], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "on\n"
    watcher = b.connect(lease=False)
    got: list = []
    waiter = threading.Thread(target=lambda: got.append(b.connect(purpose="next")))
    waiter.start()
    wait_for(lambda: len(b.status().queue) == 1, DEADLINE, "the waiter to queue")
    holder.kill()
    waiter.join(DEADLINE)
    assert got, "the waiter never got the lease"
    assert b.ended_leases() == [b.status().lease.holder]  # afterLease ran for the dead holder
    assert watcher.power.state() is False  # ... and switched the board off
    assert b.status().lease.purpose == "next"
    got[0].power.on()
    assert "ending the lease of" in b.log.read_text()  # hook output reaches the exporter's log
    holder.wait()


def test_a_lease_warns_before_its_expiry_ends_it_and_extending_pushes_it_back(board):
    b = board(warning="2s")
    holder = b.connect(purpose="short", duration=3)
    events: list = []
    holder.lease.listeners.append(events.append)
    wait_for(lambda: holder.lease.ended, DEADLINE, "the lease to expire")
    kinds = [e.kind for e in events]
    assert kinds == [lease_pb2.LEASE_EVENT_EXPIRING, lease_pb2.LEASE_EVENT_ENDED]
    assert "the lease expires in" in events[0].message and holder.lease.ended == "expired"
    with pytest.raises(LeaseRequired):
        holder.power.on()
    again = b.connect(purpose="longer", duration=3)
    again.lease.extend(3600)
    assert again.lease.remaining > 3000
    wait_for(lambda: b.status().lease.expires - again.lease.since > 3000, DEADLINE, "the status to show it")
    again.power.on()


def test_waiters_get_the_board_in_the_order_they_asked(board):
    b = board()
    first = b.connect(purpose="first")
    granted, positions = [], {}
    threads = []
    for name in ("second", "third", "fourth"):
        positions[name] = []

        def take(name=name):
            client = b.connect(purpose=name, on_queued=positions[name].append)
            granted.append(name)
            client.lease.release()

        threads.append(threading.Thread(target=take))
        threads[-1].start()
        queued = len(threads)
        wait_for(lambda queued=queued: len(b.status().queue) == queued, DEADLINE, f"{name} to queue")
    first.lease.release()
    for thread in threads:
        thread.join(DEADLINE)
    assert granted == ["second", "third", "fourth"]
    assert positions == {"second": [1], "third": [2, 1], "fourth": [3, 2, 1]}


def test_force_release_needs_the_admin_credential(board, tmp_path):
    b = board(hooks=AFTER_LEASE)
    holder = b.connect(purpose="forgotten")
    wrong = tmp_path / "wrong.pass"
    wrong.write_text("guess")
    refused = b.cli("lease", "force-release", "--endpoint", b.address, "--admin-passphrase-file", str(wrong))
    assert refused.returncode == 1 and "wrong admin passphrase" in refused.stderr
    holder.power.on()
    done = b.cli(
        "lease",
        "force-release",
        "--endpoint",
        b.address,
        "--admin-passphrase-file",
        str(b.directory / "admin.pass"),
    )
    assert done.returncode == 0 and "force-released the lease of" in done.stdout
    wait_for(lambda: holder.lease.ended, DEADLINE, "the holder to hear of it")
    assert holder.lease.ended == "force-released by the exporter's admin"
    wait_for(b.ended_leases, DEADLINE, "afterLease to run")
    with pytest.raises(LeaseRequired):
        holder.power.on()


def test_a_lease_held_from_the_command_line_gives_its_token_to_other_clients(board):
    b = board()
    acquire = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jumpstarter_jupyter",
            "lease",
            "acquire",
            "--endpoint",
            b.address,
            "--purpose",
            "upstream shell",
            "--print-token",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    token = acquire.stdout.readline().strip()
    as_holder = b.connect(passphrase=token)  # the token as a passphrase acts under the lease
    as_holder.power.on()
    assert as_holder.lease is None
    acquire.stdin.close()  # standard input closing releases it
    assert acquire.wait(DEADLINE) == 0
    wait_for(lambda: not b.status().HasField("lease"), DEADLINE, "the lease to end")
    with pytest.raises(LeaseRequired, match="not leased"):
        as_holder.power.off()


def test_wait_bounds_the_time_in_line(board):
    b = board()
    b.connect(purpose="long job")
    with pytest.raises(LeaseTimeout, match=r"within 1 s, still number 1 in line: held by .* \(long job\)"):
        b.connect(wait=1)
    assert len(b.status().queue) == 0


HOOKS = """\
hooks:
  beforeLease:
    script: {script}
    timeout: {timeout}
    onFailure: {policy}
"""


@pytest.mark.parametrize(
    "script, timeout, policy, outcome",
    [
        ("'echo hello from the hook'", 30, "endLease", "granted"),
        ("'sleep 60'", 1, "warn", "granted"),
        ("'echo broken; exit 3'", 30, "endLease", "beforeLease hook exited with status 3"),
        ("'sleep 60'", 1, "endLease", "beforeLease hook timed out after 1 s"),
        ("'exit 1'", 30, "exit", "exporter exits 1"),
    ],
)
def test_before_lease_hook_failures_follow_their_policy(board, script, timeout, policy, outcome):
    b = board(
        hooks=HOOKS.replace("{script}", script).replace("{timeout}", str(timeout)).replace("{policy}", policy)
    )
    if outcome == "granted":
        b.connect(purpose="hooked").power.on()
        log = b.log.read_text()
        assert ("[beforeLease] hello from the hook" in log) or ("timed out after 1 s" in log), log
        return
    with pytest.raises(JumpstarterError, match="refused"):
        b.connect(purpose="hooked")
    if outcome == "exporter exits 1":
        assert b.process.wait(DEADLINE) == 1
    else:
        assert outcome in b.log.read_text()
        assert not b.status().HasField("lease")


def test_a_holder_that_goes_silent_loses_the_lease_within_a_heartbeat_period(board):
    """A laptop closed mid-lease: the stream stays open, the heartbeats stop."""
    import grpc

    from jumpstarter_jupyter.protocol.v1 import lease_pb2_grpc

    b = board()
    channel = grpc.insecure_channel(b.address)
    closed = threading.Event()

    def requests():
        yield lease_pb2.HoldRequest(holder="laptop@lab", purpose="then closed")
        closed.wait()  # no heartbeat ever

    events = lease_pb2_grpc.LeaseServiceStub(channel).Hold(requests())
    assert next(events).kind == lease_pb2.LEASE_EVENT_GRANTED
    ended = next(events)
    assert (ended.kind, ended.message) == (
        lease_pb2.LEASE_EVENT_ENDED,
        "the holder went silent (no heartbeat for 3 s)",
    )
    assert not b.status().HasField("lease")
    closed.set()
    channel.close()


def test_hook_output_reaches_log_stream_marked_as_hook_output(board):
    import grpc
    from google.protobuf import empty_pb2

    from jumpstarter_jupyter.protocol.v1 import common_pb2, jumpstarter_pb2_grpc

    b = board(
        hooks=HOOKS.replace("{script}", "'echo hello from the hook'")
        .replace("{timeout}", "30")
        .replace("{policy}", "warn")
    )
    channel = grpc.insecure_channel(b.address)
    logs = jumpstarter_pb2_grpc.ExporterServiceStub(channel).LogStream(empty_pb2.Empty())
    seen: list = []

    def read() -> None:
        for record in logs:
            seen.append(record)
            if record.source == common_pb2.LOG_SOURCE_BEFORE_LEASE_HOOK:
                return

    reader = threading.Thread(target=read)
    reader.start()
    # a driver record through the stream shows that it is open before the hook runs
    wait_for(
        lambda: (
            b.cli("j", "--endpoint", b.address, "power", "on") and any("power on" in r.message for r in seen)
        ),
        DEADLINE,
        "the log stream to carry a driver record",
    )
    b.connect(purpose="logged")
    reader.join(DEADLINE)
    logs.cancel()
    channel.close()
    assert seen[-1].message == "[beforeLease] hello from the hook"


def test_watchers_follow_the_lease_and_the_holder_hears_a_hand_over_request(board):
    b = board()
    watcher = b.connect(lease=False)
    seen: list = []
    watcher.connection.watch_lease(lambda state, event: seen.append(state))
    wait_for(lambda: seen and seen[-1].required and not seen[-1].holder, DEADLINE, "the first status: free")
    assert seen[-1].locked == "nobody holds the board: take the lease to control it"

    holder = b.connect(purpose="bring-up")
    notices: list = []
    holder.connection.watch_lease(lambda state, event: notices.append((state, event)))
    wait_for(
        lambda: seen[-1].holder and seen[-1].purpose == "bring-up", DEADLINE, "the watcher to see the holder"
    )
    assert not seen[-1].mine and seen[-1].locked.startswith(f"held by {holder.lease.holder} (bring-up)")
    assert 0 < seen[-1].remaining <= 3600
    wait_for(lambda: notices and notices[-1][0].mine, DEADLINE, "the holder to see itself as holder")
    assert notices[-1][0].locked == ""

    assert (
        watcher.connection.request_handover("please, flashing next")
        == f"asked {holder.lease.holder} to hand the board over"
    )
    wait_for(
        lambda: any(
            event is not None and event.kind == lease_pb2.LEASE_EVENT_HANDOVER_REQUESTED
            for _, event in notices
        ),
        DEADLINE,
        "the holder to hear the request",
    )
    request = next(
        e for _, e in notices if e is not None and e.kind == lease_pb2.LEASE_EVENT_HANDOVER_REQUESTED
    )
    assert request.message.endswith("asks for the board: please, flashing next")

    holder.lease.release()
    wait_for(lambda: not seen[-1].holder, DEADLINE, "the watcher to see the board free again")
    watcher.connection.acquire(purpose="taken over")
    wait_for(
        lambda: seen[-1].mine and seen[-1].purpose == "taken over", DEADLINE, "the watcher to hold the board"
    )
    watcher.power.on()  # the same connection now controls the board, without reconnecting
    watcher.lease.release()
    with pytest.raises(LeaseRequired, match="nobody holds the board"):
        b.connect(lease=False).connection.request_handover()


def test_a_process_that_exits_releases_its_lease_at_once(board):
    b = board()
    script = (
        f"import jumpstarter_jupyter as jj; dut = jj.connect({b.address!r}, purpose='script'); "
        "print('held', flush=True)"
    )
    held = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=DEADLINE)
    assert held.stdout.strip() == "held", held.stderr
    # no heartbeat period had to pass: the exiting process released it (the log says by whom)
    status = b.status()
    assert not status.HasField("lease")
    assert "released by its holder" in b.log.read_text()
