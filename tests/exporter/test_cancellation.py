"""No client can wedge the exporter: cancelled and expired calls release everything they held.

The exporters under load run in their own processes (``jumpstarter-jupyter run``), so their
threads, file descriptors and memory are measured from ``/proc`` without the test's own.
Deadlines here are generous: a hang is the failure; timings belong to ``make bench``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from blocking import Blocking
from google.protobuf import empty_pb2

from jumpstarter_jupyter import ConnectionFailed, connect
from jumpstarter_jupyter.exporter.calls import WORKERS
from jumpstarter_jupyter.protocol.codec import encode
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc
from jumpstarter_jupyter.protocol.v1.jumpstarter_pb2_grpc import ExporterServiceStub
from support import client_for, process_figures, run_async, start_exporter, wait_for

HERE = Path(__file__).parent
CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power:
    type: MockPower
  led:
    type: jumpstarter_jupyter.drivers.gpio.driver.MockDigitalInput
  blocking:
    type: blocking.Blocking
    config:
      teardown_marker: {marker}
  serial:
    type: PySerial
    config:
      url: "loop://"
"""
BATCH = 10_000
CONCURRENCY = 200


@pytest.fixture
def exporter_process(tmp_path):
    """An exporter process serving CONFIG on a unix socket: (process, socket path, teardown marker)."""
    marker = tmp_path / "torn-down"
    config = tmp_path / "board.yaml"
    config.write_text(CONFIG.format(marker=marker))
    socket_path = tmp_path / "board.sock"
    process = start_exporter("run", config, "--socket", socket_path, env={"PYTHONPATH": str(HERE)})
    yield process, f"unix:{socket_path}", marker
    if process.poll() is None:
        process.kill()
    process.wait()


async def _uuids(stub: ExporterServiceStub) -> dict[str, str]:
    report = await stub.GetReport(empty_pb2.Empty())
    return {entry.labels.get("jumpstarter.dev/name", ""): entry.uuid for entry in report.reports}


def _request(uuid: str, method: str, *args) -> pb.DriverCallRequest:
    return pb.DriverCallRequest(uuid=uuid, method=method, args=[encode(a) for a in args])


async def _abandoned_calls(stub: ExporterServiceStub, uuids: dict[str, str], count: int) -> dict[str, int]:
    """``count`` waits that never end by themselves, each cancelled by the client or expired by
    its deadline: async GPIO waits and sync token-honouring waits, in equal parts."""
    calls = [_request(uuids["led"], "wait_for_active", None), _request(uuids["blocking"], "sync_wait")]
    limit = asyncio.Semaphore(CONCURRENCY)
    outcomes: dict[str, int] = {}

    async def one(index: int) -> None:
        async with limit:
            request = calls[index % 2]
            if index % 4 < 2:  # the deadline passes
                try:
                    await stub.DriverCall(request, timeout=0.05)
                    outcome = "answered"
                except grpc.aio.AioRpcError as error:
                    outcome = error.code().name
            else:  # the client goes away
                call = stub.DriverCall(request)
                await asyncio.sleep(0.02)  # let the call reach the driver before it is abandoned
                call.cancel()
                outcome = "CANCELLED"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    await asyncio.gather(*(one(i) for i in range(count)))
    return outcomes


async def _fill_worker_pool(stub: ExporterServiceStub, uuids: dict[str, str]) -> None:
    """Occupy every worker thread at once, then let go: the pool has all its threads after this."""

    async def started() -> float:
        return (await stub.DriverCall(_request(uuids["blocking"], "calls_started"))).result.number_value

    before = await started()
    calls = [stub.DriverCall(_request(uuids["blocking"], "sync_wait")) for _ in range(WORKERS + 8)]
    async with asyncio.timeout(60):
        while await started() < before + WORKERS:
            await asyncio.sleep(0.05)  # polling interval of a condition with a deadline
    for call in calls:
        call.cancel()


async def _unrelated_calls(
    stub: ExporterServiceStub, uuids: dict[str, str], stop: asyncio.Event, outcomes: list | None = None
) -> list:
    """Call ``power.state`` over and over until ``stop``; returns each call's outcome (also kept in ``outcomes``)."""
    outcomes = [] if outcomes is None else outcomes
    while not stop.is_set():
        try:
            response = await stub.DriverCall(_request(uuids["power"], "state"), timeout=20)
            outcomes.append(response.result.WhichOneof("kind"))
        except grpc.aio.AioRpcError as error:
            outcomes.append(error.code().name)
        await asyncio.sleep(0.02)  # a steady trickle, not a second flood
    return outcomes


def test_ten_thousand_abandoned_waits_leave_no_threads_descriptors_or_memory_behind(exporter_process):
    process, address, _ = exporter_process

    async def scenario() -> dict:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
            uuids = await _uuids(stub)
            # warm up: every worker thread exists and has run this code (its stack pages count in RSS)
            await _fill_worker_pool(stub, uuids)
            await _abandoned_calls(stub, uuids, BATCH)
            figures = {"before": process_figures(process.pid)}
            stop = asyncio.Event()
            unrelated = asyncio.ensure_future(_unrelated_calls(stub, uuids, stop))
            for batch in ("first", "second", "third"):
                figures[batch] = await _abandoned_calls(stub, uuids, BATCH)
                figures[f"after_{batch}"] = process_figures(process.pid)
            stop.set()
            answer = await stub.DriverCall(_request(uuids["blocking"], "ping"), timeout=20)
            return {**figures, "unrelated": await unrelated, "answer": answer}

    figures = run_async(scenario)
    print(json.dumps({k: v for k, v in figures.items() if k not in ("unrelated", "answer")}))
    for batch in ("first", "second", "third"):
        assert sum(figures[batch].values()) == BATCH
        assert set(figures[batch]) <= {"CANCELLED", "DEADLINE_EXCEEDED"}, figures[batch]
    before, first, third = figures["before"], figures["after_first"], figures["after_third"]
    for after in (figures["after_first"], figures["after_second"], third):
        assert after["threads"] <= before["threads"] + 4
        assert after["fds"] <= before["fds"] + 4
    assert first["rss"] - before["rss"] < 20 << 20
    # A leak adds to every batch (1 KB a call: 10 MB a batch). RSS also moves by up to ~10 MB
    # either way between batches (allocator caches), and on a loaded machine its high-water mark
    # jumps by up to ~25 MB in one batch now and then, and stays: so one batch must add little.
    growth = [figures["after_second"]["rss"] - first["rss"], third["rss"] - figures["after_second"]["rss"]]
    assert min(growth) < 8 << 20, f"memory keeps growing with abandoned calls: {growth} bytes a batch"
    unrelated = figures["unrelated"]
    assert unrelated and set(unrelated) == {"bool_value"}, unrelated
    assert figures["answer"].result.string_value == "pong"


FLOOD_ROUNDS = 6  # grpcio 1.82.0-1.85.4 cancelled 1-9 unrelated calls per 30 000 abandoned ones


def test_another_clients_calls_are_never_cancelled_while_a_client_abandons_thousands_of_waits(
    exporter_process,
):
    """A second client, on its own connection, calls ``power.state`` throughout a flood of
    abandoned waits: every one of its calls is answered. The flood repeats until one of them
    fails or FLOOD_ROUNDS pass (grpc.aio servers of grpcio 1.82.0 to 1.85.4 fail within three)."""
    process, address, _ = exporter_process
    own_connection = [
        ("grpc.use_local_subchannel_pool", 1)
    ]  # channels to one target share a connection otherwise

    async def scenario() -> tuple[int, list]:
        async with (
            grpc.aio.insecure_channel(address) as flooding,
            grpc.aio.insecure_channel(address, options=own_connection) as other,
        ):
            flood = jumpstarter_pb2_grpc.ExporterServiceStub(flooding)
            uuids = await _uuids(flood)
            stop, outcomes = asyncio.Event(), []
            unrelated = asyncio.ensure_future(
                _unrelated_calls(jumpstarter_pb2_grpc.ExporterServiceStub(other), uuids, stop, outcomes)
            )
            rounds = 0
            while rounds < FLOOD_ROUNDS and not set(outcomes) - {"bool_value"}:
                await _abandoned_calls(flood, uuids, BATCH)
                rounds += 1
            stop.set()
            return rounds, await unrelated

    rounds, outcomes = run_async(scenario)
    failed = {index: outcome for index, outcome in enumerate(outcomes) if outcome != "bool_value"}
    assert outcomes and not failed, (
        f"in round {rounds} of the flood, {len(failed)} of {len(outcomes)} unrelated calls failed: {failed}"
    )


def test_a_call_the_exporter_cancels_itself_says_why_and_is_logged_as_a_warning(tmp_path):
    """The lease's end cancels its holder's running calls: the holder is told why, and the
    exporter's log names the driver and method (a call its client cancels is not logged)."""
    config = tmp_path / "board.yaml"
    config.write_text(
        "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\n"
        "export:\n  blocking:\n    type: blocking.Blocking\nlease:\n  required: true\n"
    )
    log = tmp_path / "exporter.log"
    process = start_exporter(
        "run", config, "--socket", tmp_path / "board.sock", env={"PYTHONPATH": str(HERE)}, log=str(log)
    )
    try:
        with connect(f"unix:{tmp_path / 'board.sock'}") as holder:
            outcome: dict = {}

            def wait() -> None:
                try:
                    holder.blocking.async_wait()
                except Exception as error:  # noqa: BLE001 - the test inspects whatever ended the call
                    outcome["error"] = error

            waiting = threading.Thread(target=wait)
            waiting.start()
            wait_for(lambda: holder.blocking.calls_started() == 1, what="the wait to start")
            holder.lease.release()
            waiting.join(30)
            assert not waiting.is_alive()
        error = outcome["error"]
        assert isinstance(error, ConnectionFailed)
        assert "cancelled by the exporter: the lease of" in str(error) and "ended: released" in str(error), (
            error
        )
    finally:
        process.terminate()
        process.wait(30)
    warnings = [line for line in log.read_text().splitlines() if "cancelled by the exporter" in line]
    assert len(warnings) == 1 and " WARNING " in warnings[0], warnings
    assert "blocking.async_wait was cancelled by the exporter, not by its caller: the lease of" in warnings[0]


def test_sync_and_async_methods_end_when_their_caller_goes_away():
    blocking = Blocking()
    with client_for(blocking, "blocking") as client:
        channel = grpc.insecure_channel(client.connection.endpoint)
        stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
        for method in ("sync_wait", "async_wait"):
            running = blocking.running
            call = stub.DriverCall.future(_request(client.connection.uuid(client.path), method))
            blocking.started.wait(lambda running=running: blocking.running > running, timeout=30)
            call.cancel()
            wait_for(lambda method=method: method in blocking.ended, what=f"{method} to end on the exporter")
        stream = stub.StreamingDriverCall(
            pb.StreamingDriverCallRequest(uuid=client.connection.uuid(client.path), method="sync_stream")
        )
        assert next(stream).result.number_value == 1
        stream.cancel()
        wait_for(lambda: "sync_stream" in blocking.ended, what="sync_stream's generator to close")
        with pytest.raises(grpc.RpcError) as expired:
            stub.DriverCall(_request(client.connection.uuid(client.path), "sync_wait"), timeout=0.2)
        assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        wait_for(lambda: blocking.ended.count("sync_wait") == 2, what="the expired sync_wait to end")
        channel.close()


def test_sigterm_stops_an_exporter_with_a_hundred_blocked_calls_and_runs_teardown(exporter_process):
    process, address, marker = exporter_process
    channel = grpc.insecure_channel(address)
    stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
    uuids = {
        e.labels.get("jumpstarter.dev/name", ""): e.uuid for e in stub.GetReport(empty_pb2.Empty()).reports
    }
    methods = ["sync_wait", "async_wait"] * 48 + ["stubborn"] * 4  # 4 that ignore cancellation
    calls = [stub.DriverCall.future(_request(uuids["blocking"], method)) for method in methods]
    wait_for(
        lambda: stub.DriverCall(_request(uuids["blocking"], "calls_started")).result.number_value == 100,
        what="the blocked calls to start",
    )
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    print(f"exporter exited {time.monotonic() - started:.2f} s after SIGTERM, code {process.returncode}")
    assert process.returncode == 0
    assert marker.read_text() == "torn down"
    for call in calls:
        assert call.exception(timeout=30) is not None  # every blocked caller hears about it
    channel.close()


FOLLOWERS = """
import asyncio, hashlib, json, sys
import grpc
from jumpstarter_jupyter.protocol.v1 import console_pb2, console_pb2_grpc

async def main(address, uuid, count, size):
    async with grpc.aio.insecure_channel(address) as channel:
        stub = console_pb2_grpc.ConsoleServiceStub(channel)
        streams = [stub.Follow(console_pb2.FollowRequest(uuid=uuid, offset=0)) for _ in range(count)]
        async def follow(stream):
            data = bytearray()
            while len(data) < size:
                data += (await stream.read()).data
            return hashlib.sha256(bytes(data)).hexdigest()
        print("following", flush=True)
        print(json.dumps(await asyncio.gather(*map(follow, streams))), flush=True)
        await asyncio.to_thread(sys.stdin.read)  # the streams stay open until the test has looked

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
"""


def test_a_thousand_console_followers_in_four_processes_all_receive_the_same_bytes(exporter_process):
    process, address, _ = exporter_process
    payload = b"".join(b"line %05d of the boot log\r\n" % i for i in range(4000))
    with connect(address) as dut:
        threads_before = process_figures(process.pid)["threads"]
        followers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    FOLLOWERS,
                    address,
                    dut.serial.connection.uuid(dut.serial.path),
                    "250",
                    str(len(payload)),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(4)
        ]
        for follower in followers:
            assert follower.stdout.readline().strip() == "following"
        for start in range(0, len(payload), 4096):
            dut.serial.write(payload[start : start + 4096])
        digests = []
        for follower in followers:
            digests += json.loads(follower.stdout.readline())
        threads_while_following = process_figures(process.pid)["threads"]  # all 1000 streams still open
        for follower in followers:
            follower.communicate(timeout=60)
    assert len(digests) == 1000
    assert set(digests) == {hashlib.sha256(payload).hexdigest()}
    assert threads_while_following <= threads_before + 4, "followers cost threads"


def test_a_console_follower_that_stops_reading_costs_bounded_memory_and_later_hears_what_it_missed(
    exporter_process,
):
    from jumpstarter_jupyter.protocol.v1 import console_pb2, console_pb2_grpc

    process, address, _ = exporter_process
    channel = grpc.insecure_channel(address)
    with connect(address) as dut:
        follow = console_pb2_grpc.ConsoleServiceStub(channel).Follow(
            console_pb2.FollowRequest(uuid=dut.serial.connection.uuid(dut.serial.path), from_end=True)
        )
        dut.serial.write(b"hello\n")
        assert next(follow).data == b"hello\n"  # then it stops reading
        before = process_figures(process.pid)["rss"]
        block = b"y" * (256 << 10)
        for _ in range(256):  # 64 MiB through a console that keeps 1 MiB
            dut.serial.write(block)
        dut.serial.flush()
        grown = process_figures(process.pid)["rss"] - before
        dropped = 0
        for chunk in follow:  # reading again: a dropped count, then the newest bytes
            dropped += chunk.dropped
            if dropped:
                break
    follow.cancel()
    channel.close()
    print(f"the stalled follower missed {dropped} bytes; the exporter grew by {grown / 2**20:.1f} MiB")
    assert dropped > 8 << 20
    assert grown < 32 << 20, f"the exporter grew by {grown >> 20} MiB for a reader that stopped"


def test_the_exporter_warns_when_its_grpcio_mishandles_abandoned_calls(caplog):
    from jumpstarter_jupyter.exporter.server import _warn_about_grpcio

    for version in ("1.72.1", "1.78.2", "1.80.1", "1.85.4"):
        _warn_about_grpcio(version)
    warned = [record.getMessage().split(":")[0] for record in caplog.records if record.levelname == "WARNING"]
    assert warned == ["grpcio 1.80.1", "grpcio 1.85.4"]
