"""Our side: each figure through jumpstarter-jupyter's own Python client (run in .venv).

    python benchmarks/ours.py FIGURE ENDPOINT [ARGS]    # prints one RESULT line

Figures: unary COUNT | routed_unary HOME COUNT [SELECTOR] (through the test controller's router)
| echo CHILD TOTAL CHUNK | flash FILE | sd-flash FILE bmap|full | connect
| concurrent CLIENTS SECONDS [CHANNELS]
| storm COUNT (power.on() latency while COUNT abandoned led waits are cancelled)
| flood SECONDS (the serial widget displayed in a real kernel while the console floods)
| can COUNT BURST GROUP (CAN latency, then a burst's frames/s and CPU; see can_bus.py)
| screen-live - SECONDS (a 1024x768 MJPEG source live in Chromium)
| screen-snapshot - COUNT (QEMU screen; see screen.py)
"""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import MB, call_rate, concurrent_calls, echo_rate, latencies_ms, report  # noqa: E402

from jumpstarter_jupyter import connect  # noqa: E402


def unary(endpoint: str, count: str) -> None:
    with connect(endpoint) as dut:
        report(call_rate(dut.power.on, int(count)))


def routed_unary(home: str, count: str, selector: str = "bench=routed") -> None:
    """Unary calls to the exporter leased by ``selector`` from the test controller (client config
    ``HOME/clients/ours.yaml``): upstream's, or ours with ``bench=routed-ours``."""
    os.environ["JMP_CLIENT_CONFIG_HOME"] = home
    with connect(controller="ours", selector=selector) as dut:
        report(call_rate(dut.power.on, int(count)))


def echo(endpoint: str, child: str, total: str, chunk: str) -> None:
    with connect(endpoint) as dut, dut[child].stream("connect") as stream:
        report(echo_rate(stream.send, stream.receive, int(total), int(chunk)))


def flash(endpoint: str, path: str) -> None:
    with connect(endpoint) as dut:
        start = time.perf_counter()
        dut.storage.flash(path)
        report(os.path.getsize(path) / (time.perf_counter() - start) / MB)


def sd_flash(endpoint: str, path: str, how: str) -> None:
    """Flash ``path`` onto a real block device (StorageDevice): ``how`` is ``bmap`` (its
    IMAGE.bmap) or ``full``; the figure is the image's size over the time, in MB/s."""
    with connect(endpoint) as dut:
        start = time.perf_counter()
        figures = dut.storage.flash(path, bmap=how == "bmap")
        report(figures["image_size"] / (time.perf_counter() - start) / MB, written=figures["written"])


def connect_time(endpoint: str) -> None:
    """Milliseconds from ``connect()`` until it returns the client tree."""
    start = time.perf_counter()
    dut = connect(endpoint)
    elapsed = time.perf_counter() - start
    with dut:
        report(elapsed * 1e3, drivers=sum(1 for _ in dut.walk()))


def concurrent(endpoint: str, clients: str, seconds: str, channels: str = "1") -> None:
    def setup():
        return connect(endpoint).power.on

    result = concurrent_calls(int(clients), float(seconds), setup, int(channels))
    report(result.pop("calls_per_s"), **result)


def storm(endpoint: str, count: str) -> None:
    """power.on() latency, idle and while another process abandons ``count`` led waits."""
    import multiprocessing

    with connect(endpoint) as dut:
        led = dut.led.connection.uuid(dut.led.path)
        idle = [_timed(dut.power.on) for _ in range(500)]
        context = multiprocessing.get_context("spawn")  # no grpc state inherited by the storm
        storming = context.Process(target=_abandon_waits, args=(endpoint, led, int(count)))
        storming.start()
        during = []
        while storming.is_alive():
            during.append(_timed(dut.power.on))
        storming.join()
    if storming.exitcode != 0:
        raise SystemExit(f"the storm process failed ({storming.exitcode})")
    figures = latencies_ms(during)
    report(
        figures["p99_ms"],
        median_ms=figures["median_ms"],
        idle_median_ms=latencies_ms(idle)["median_ms"],
        calls_during=len(during),
    )


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _abandon_waits(endpoint: str, uuid: str, count: int) -> None:
    """``count`` ``wait_for_active(None)`` calls, 200 at a time, each expired by a 50 ms deadline."""
    import asyncio

    import grpc

    from jumpstarter_jupyter.protocol.codec import encode
    from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
    from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc

    request = pb.DriverCallRequest(uuid=uuid, method="wait_for_active", args=[encode(None)])

    async def run() -> None:
        async with grpc.aio.insecure_channel(endpoint) as channel:
            stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
            limit = asyncio.Semaphore(200)

            async def one() -> None:
                async with limit:
                    try:
                        await stub.DriverCall(request, timeout=0.05)
                    except grpc.aio.AioRpcError as error:
                        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                            raise

            await asyncio.gather(*(one() for _ in range(count)))

    asyncio.run(run())


def flood(endpoint: str, seconds: str) -> None:
    from flood import measure_flood  # jupyter_client: only this figure needs it

    result = measure_flood(endpoint, float(seconds))
    report(result.pop("msgs_per_s"), **result)


def can_bus(endpoint: str, count: str, burst: str, group: str) -> None:
    from can_bus import measure_can

    with connect(endpoint) as dut:
        result = measure_can(dut.can, dut.can_source, int(count), float(burst), int(group))
    report(result.pop("frames_per_s"), **result)


def screen_live(_endpoint: str, seconds: str) -> None:
    from screen import measure_live  # JupyterLab and Chromium: only this figure needs them

    result = measure_live(float(seconds))
    report(result.pop("fps"), **result)


def screen_snapshot(_endpoint: str, count: str) -> None:
    from screen import measure_snapshot

    result = measure_snapshot(int(count))
    report(result.pop("median_ms"), **result)


def snmp(endpoint: str, count: str) -> None:
    """SnmpPower.on() round trips: client -> exporter -> SNMP set on the agent -> back."""
    with connect(endpoint) as dut:
        report(call_rate(dut.pdu.on, int(count), warmup=5))


FIGURES = {
    "snmp": snmp,
    "can": can_bus,
    "unary": unary,
    "routed_unary": routed_unary,
    "echo": echo,
    "flash": flash,
    "sd-flash": sd_flash,
    "connect": connect_time,
    "concurrent": concurrent,
    "storm": storm,
    "flood": flood,
    "screen-live": screen_live,
    "screen-snapshot": screen_snapshot,
}

if __name__ == "__main__":
    FIGURES[sys.argv[1]](*sys.argv[2:])
