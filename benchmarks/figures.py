"""What `make bench` measures: each measurement's client commands per side, rows and targets.

A *measurement* runs one client process per side and round; its RESULT line fills one or
more *rows* of the table. A row's targets are checked on the medians.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MiB = 1 << 20


@dataclass
class Sizes:
    """How much each measurement does (the issue's definitions; ``quick()`` only checks the harness)."""

    calls: int = 3000  # unary round trips per run
    stream: int = 256 * MiB  # bytes echoed per run
    chunk: int = 64 * 1024  # bytes per write
    flash: int = 256 * MiB  # size of the flashed file
    tree: int = 1000  # drivers of the wide exporter
    clients: int = 32  # concurrent client processes
    channel_processes: int = 8  # processes of the many-channels figure
    channels: int = 32  # channels (threads) in each of them
    storm: int = 10_000  # abandoned waits during the storm
    seconds: float = 5.0  # how long they call
    flood_rate: int = 1_000_000  # console bytes/s during the flood
    flood_seconds: float = 60.0  # how long the flood is watched
    can_round_trips: int = 300  # CAN send -> receive round trips timed
    snmp_calls: int = 300  # PDU outlet switchings per run
    can_burst_ours: float = 1.0  # seconds the CAN source sends back to back (< our 65 536-frame ring)
    can_burst_upstream: float = 0.1  # upstream receives ~1 000 frames/s: its burst is shorter
    screen_seconds: float = 20.0  # how long the live screen view is watched
    screen_snapshots: int = 50  # QEMU screen snapshots timed
    farm: int = 50  # exporters of the farm (one pool), each its own process
    farm_virtual: int = 8  # of them virtual boards: run-notebooks runs the smoke test on this many at once
    farm_notebook: str = "smoke"  # what run-notebooks runs (quick: a minimal notebook, not the smoke test)
    debugger_read: int = MiB  # guest memory read per round through the debugger
    debugger_rounds: int = 5  # reads per client process (the median counts)
    sparse: int = (
        1 << 30
    )  # the sparse image flashed with its bmap (a tenth of it mapped), and the loop device

    @classmethod
    def quick(cls) -> Sizes:
        # the same code paths with less work, so `make test` stays quick
        return cls(
            calls=300,
            stream=16 * MiB,
            flash=16 * MiB,
            tree=200,
            clients=8,
            channel_processes=2,
            channels=8,
            storm=1000,
            seconds=0.5,
            flood_seconds=3.0,
            can_round_trips=30,
            can_burst_ours=0.1,
            can_burst_upstream=0.02,
            farm=3,
            farm_virtual=2,
            farm_notebook="minimal",
            sparse=64 * MiB,
            snmp_calls=30,
            debugger_rounds=1,
            screen_seconds=3.0,
            screen_snapshots=5,
        )


Medians = dict[str, dict[str, float]]  # row key -> side -> median


@dataclass
class Target:
    text: str
    check: Callable[[Medians], bool | None]


def ratio_at_least(row: str, side: str, factor: float) -> Target:
    """ours >= factor x side (higher is better)."""
    return Target(f">= {factor:g}x {side}", lambda m: _cmp(m, row, side, lambda o, s: o >= factor * s))


def ratio_at_most(row: str, side: str, factor: float) -> Target:
    """ours <= factor x side (lower is better)."""
    return Target(f"<= {factor:g}x {side}", lambda m: _cmp(m, row, side, lambda o, s: o <= factor * s))


def below(row: str, limit: float, unit: str) -> Target:
    return Target(f"< {limit:g} {unit}", lambda m: _cmp(m, row, "ours", lambda o, _: o < limit))


def at_most(row: str, limit: float, unit: str) -> Target:
    return Target(f"<= {limit:g} {unit}", lambda m: _cmp(m, row, "ours", lambda o, _: o <= limit))


def _cmp(medians: Medians, row: str, side: str, test) -> bool | None:
    values = medians.get(row, {})
    if "ours" not in values or side not in values:
        return None  # not measured this run
    return bool(test(values["ours"], values[side]))


@dataclass
class Row:
    key: str
    title: str
    unit: str
    targets: list[Target] = field(default_factory=list)

    def ratios(self, medians: dict[str, float]) -> dict[str, float]:
        """ours / each other side."""
        ours = medians.get("ours")
        return {
            f"ours/{side}": ours / value
            for side, value in medians.items()
            if side != "ours" and ours is not None and value
        }


Command = Callable[..., list[str]]


@dataclass
class Measurement:
    key: str
    title: str
    children: set[str]  # bench.yaml children the exporters must serve
    sides: dict[str, Command]  # side -> bench -> argv of one client process
    rows: dict[str, str]  # row key -> RESULT field


def _ours(service: str, figure: str, *args) -> Command:
    return lambda b: b.command("ours", "ours.py", [figure, b.address(service), *[str(a(b)) for a in args]])


def _upstream(service: str, figure: str, *args) -> Command:
    return lambda b: b.command(
        "upstream", "upstream.py", [figure, *[str(a(b)) for a in args]], endpoint=b.address(service)
    )


def _raw(figure: str, service: str, group: str, *args) -> Command:
    return lambda b: b.command(
        "raw", "raw.py", [figure, b.address(service, group), *[str(a(b)) for a in args]]
    )


def _farm(figure: str, *args) -> Command:
    return lambda b: b.command("ours", "farm.py", [figure, b.address("farm"), *[str(a(b)) for a in args]])


def _routed(side: str) -> Command:
    """A client leasing the routed exporter by selector from the test controller (benchmarks/controller.py),
    every call through its router: ours by ``connect(controller=...)``, upstream's under ``jmp shell``."""

    def command(b) -> list[str]:
        home = b.address("routed")
        if side == "ours":
            return b.command("ours", "ours.py", ["routed_unary", home, str(b.sizes.calls)])
        return [
            str(b.peer / "bin" / "jmp"),
            "shell",
            "--client-config",
            f"{home}/clients/upstream.yaml",
            "--selector",
            "bench=routed",
            "--",
            str(b.peer / "bin" / "python"),
            str(Path(__file__).resolve().parent / "upstream.py"),
            "unary",
            str(b.sizes.calls),
        ]

    return command


def _const(value) -> Callable:
    return lambda b: value


CALLS = lambda b: b.sizes.calls  # noqa: E731
STREAM = lambda b: b.sizes.stream  # noqa: E731
CHUNK = lambda b: b.sizes.chunk  # noqa: E731
IMAGE = lambda b: b.image()  # noqa: E731
CLIENTS = lambda b: b.sizes.clients  # noqa: E731
CHANNEL_PROCESSES = lambda b: b.sizes.channel_processes  # noqa: E731
CHANNELS = lambda b: b.sizes.channels  # noqa: E731
STORM = lambda b: b.sizes.storm  # noqa: E731
SECONDS = lambda b: b.sizes.seconds  # noqa: E731
FLOOD_SECONDS = lambda b: b.sizes.flood_seconds  # noqa: E731
CAN_ROUND_TRIPS = lambda b: b.sizes.can_round_trips  # noqa: E731
SNMP_CALLS = lambda b: b.sizes.snmp_calls  # noqa: E731


def _debugger(side: str) -> Command:
    """Both sides read through the same exporter's QEMU board (its gdbstub has one connection)."""
    return lambda b: b.command(
        "ours",
        "debugger.py",
        [side, b.address("ours-qemu"), str(b.sizes.debugger_read), str(b.sizes.debugger_rounds)],
    )


def _blockdev(figure: str, *args) -> Command:
    return lambda b: b.command("raw", "blockdev.py", [figure, *[str(a(b)) for a in args]])


SPARSE = lambda b: b.sparse_image()  # noqa: E731
LOOP = lambda b: b.loop_device()  # noqa: E731


def _group(service: str) -> Callable:
    """The process group of a service (its CPU is counted); services start their own session."""
    return lambda b: b.service(service).process.pid


def _echo(child: str) -> dict[str, Command]:
    return {
        "ours": _ours("ours", "echo", _const(child), STREAM, CHUNK),
        "upstream": _upstream("upstream", "echo", _const(child), STREAM, CHUNK),
        "raw": _raw("bidi", "raw", "tcp", STREAM, CHUNK),
        "raw socket": _raw("socket-echo", "echo", 1, STREAM, CHUNK),
    }


MEASUREMENTS = [
    Measurement(
        "unary_tcp",
        "unary power.on() round trips, TCP",
        {"power"},
        {
            "ours": _ours("ours", "unary", CALLS),
            "upstream": _upstream("upstream", "unary", CALLS),
            "raw": _raw("unary", "raw", "tcp", CALLS),
            "raw aio": _raw("unary", "raw-aio", "tcp", CALLS),
        },
        {"unary_tcp": "value"},
    ),
    Measurement(
        "unary_unix",
        "unary power.on() round trips, unix socket",
        {"power"},
        {
            "ours": _ours("ours-unix", "unary", CALLS),
            "raw": _raw("unary", "raw", "unix", CALLS),
            "raw aio": _raw("unary", "raw-aio", "unix", CALLS),
        },
        {"unary_unix": "value"},
    ),
    Measurement(
        "serial_echo",
        "serial loop:// echo, 64 KiB writes, pipelined",
        {"serial"},
        _echo("serial"),
        {"serial_echo": "value"},
    ),
    Measurement(
        "net_echo",
        "network driver echo via a local TCP echo server",
        {"net"},
        _echo("net"),
        {"net_echo": "value"},
    ),
    Measurement(
        "flash",
        "storage flash of a file through the storage mux",
        {"storage"},
        {
            "ours": _ours("ours", "flash", IMAGE),
            "upstream": _upstream("upstream", "flash", IMAGE),
            "raw": _raw("copy", "raw", "sink", IMAGE),
        },
        {"flash": "value"},
    ),
    Measurement(
        "sd_flash",
        "flash of a 256 MiB image onto a loop device (StorageDevice) vs dd",
        set(),
        {
            "ours": _ours("ours-sd", "sd-flash", IMAGE, _const("full")),
            "raw": _blockdev("dd", IMAGE, LOOP),
        },
        {"sd_flash": "value"},
    ),
    Measurement(
        "sd_bmap",
        "1 GiB sparse image, 100 MiB mapped, onto a loop device: bmap vs full flash",
        set(),
        {
            "ours": _ours("ours-sd", "sd-flash", SPARSE, _const("bmap")),
            "full": _ours("ours-sd", "sd-flash", SPARSE, _const("full")),
        },
        {"sd_bmap": "value"},
    ),
    Measurement(
        "connect",
        "connect() to a client tree (ours: the virtual board)",
        {"power", "serial", "net", "storage"},
        {
            "ours": _ours("demo", "connect"),
            "upstream": _upstream("upstream", "connect"),
        },
        {"connect": "value"},
    ),
    Measurement(
        "tree_1000",
        "report + client tree, 1 000-driver exporter",
        set(),
        {
            "ours": _ours("ours-1000", "connect"),
            "upstream": _upstream("upstream-1000", "connect"),
        },
        {"tree_1000": "value"},
    ),
    Measurement(
        "concurrency",
        "32 concurrent clients, unary calls back to back",
        {"power"},
        {
            "ours": _ours("ours", "concurrent", CLIENTS, SECONDS),
            "upstream": _upstream("upstream", "concurrent", CLIENTS, SECONDS),
        },
        {"concurrency_rate": "value", "concurrency_median": "median_ms", "concurrency_p99": "p99_ms"},
    ),
    Measurement(
        "channels",
        "256 client channels over 8 processes, unary calls back to back",
        {"power"},
        {
            "ours": _ours("ours", "concurrent", CHANNEL_PROCESSES, SECONDS, CHANNELS),
        },
        {"channels_rate": "value", "channels_median": "median_ms", "channels_p99": "p99_ms"},
    ),
    Measurement(
        "storm",
        "power.on() while 10 000 abandoned waits are cancelled",
        set(),
        {
            "ours": _ours("ours-storm", "storm", STORM),
        },
        {"storm_p99": "value", "storm_median": "median_ms", "storm_idle": "idle_median_ms"},
    ),
    Measurement(
        "can",
        "CAN bus on a virtual channel: round trips, then a burst received",
        {"can", "can_source"},
        {
            "ours": _ours("ours", "can", CAN_ROUND_TRIPS, lambda b: b.sizes.can_burst_ours, _group("ours")),
            "upstream": _upstream(
                "upstream", "can", CAN_ROUND_TRIPS, lambda b: b.sizes.can_burst_upstream, _group("upstream")
            ),
        },
        {"can_rate": "value", "can_median": "median_ms", "can_p99": "p99_ms", "can_cpu": "cpu_per_10k"},
    ),
    Measurement(
        "screen_live",
        "a 1024x768 MJPEG source (HttpVideo) live in Chromium, real kernel",
        set(),
        {
            "ours": lambda b: b.command("ours", "ours.py", ["screen-live", "-", str(b.sizes.screen_seconds)]),
        },
        {"screen_fps": "value", "screen_kernel_cpu": "kernel_cpu_percent"},
    ),
    Measurement(
        "screen_snapshot",
        "QEMU screen snapshot() (QMP screendump, PNG) at the login prompt",
        set(),
        {
            "ours": lambda b: b.command(
                "ours", "ours.py", ["screen-snapshot", "-", str(b.sizes.screen_snapshots)]
            ),
        },
        {"screen_snapshot": "value"},
    ),
    Measurement(
        "snmp",
        "PDU outlet on() over SNMP v2c, a net-snmp agent on loopback",
        set(),
        {
            "ours": _ours("ours-snmp", "snmp", SNMP_CALLS),
            "raw": _raw("snmp", "snmp-agent", 1, SNMP_CALLS),
        },
        {"snmp": "value"},
    ),
    Measurement(
        "farm_list",
        "a farm of 50 exporters: the server extension's board list",
        set(),
        {
            "ours": _farm("list"),
        },
        {"farm_list": "value", "farm_list_again": "warm_ms"},
    ),
    Measurement(
        "farm_connect",
        "a farm of 50 exporters: connect(selector=...) with one board free",
        set(),
        {
            "ours": _farm("connect"),
        },
        {"farm_connect": "value"},
    ),
    Measurement(
        "farm_notebooks_one",
        "run-notebooks: the smoke test on 1 virtual board",
        set(),
        {
            "ours": _farm("notebooks", _const(1), lambda b: b.sizes.farm_notebook),
        },
        {"farm_notebooks_one": "value"},
    ),
    Measurement(
        "farm_notebooks_many",
        "run-notebooks: the smoke test on 8 virtual boards, --parallel 8",
        set(),
        {
            "ours": _farm("notebooks", lambda b: b.sizes.farm_virtual, lambda b: b.sizes.farm_notebook),
        },
        {"farm_notebooks_many": "value"},
    ),
    Measurement(
        "debugger",
        "1 MiB of QEMU guest memory through the gdbstub: read_memory vs gdb-multiarch dump",
        set(),
        {
            "ours": _debugger("ours"),
            "gdb": _debugger("gdb"),
            "raw": _debugger("raw-gdb"),
        },
        {"debugger_read": "value"},
    ),
    # upstream's client on both sides: through our exporter hosting upstream's drivers, and on upstream's own
    Measurement(
        "hosted_unary",
        "upstream's client: unary power.on() of upstream's MockPower, hosted vs its own exporter",
        set(),
        {
            "ours": _upstream("ours-hosted", "unary", CALLS),
            "upstream": _upstream("upstream-hosted", "unary", CALLS),
        },
        {"hosted_unary": "value"},
    ),
    Measurement(
        "hosted_echo",
        "upstream's client: UnixNetwork echo, hosted vs its own exporter",
        set(),
        {
            "ours": _upstream("ours-hosted", "echo", _const("unixnet"), STREAM, CHUNK),
            "upstream": _upstream("upstream-hosted", "echo", _const("unixnet"), STREAM, CHUNK),
        },
        {"hosted_echo": "value"},
    ),
    # through an upstream controller's router (the test controller), upstream's exporter at the far end
    Measurement(
        "routed_unary",
        "unary power.on() of upstream's MockPower through the controller's router",
        set(),
        {"ours": _routed("ours"), "upstream": _routed("upstream")},
        {"routed_unary": "value"},
    ),
    Measurement(
        "routed_unary_ours",
        "unary power.on() of our exporter's MockPower through the controller's router",
        {"power"},
        {
            "ours": lambda b: b.command(
                "ours",
                "ours.py",
                ["routed_unary", b.address("routed"), str(b.sizes.calls), "bench=routed-ours"],
            ),
            "upstream": _routed("upstream"),  # upstream's jmp shell and exporter
            "ours direct": _ours("ours", "unary", CALLS),  # the same client and exporter without the router
        },
        {"routed_unary_ours": "value"},
    ),
    Measurement(
        "flood",
        "console flood at 1 MB/s into a displayed terminal, real kernel",
        set(),
        {
            "ours": _ours("ours-flood", "flood", FLOOD_SECONDS),
        },
        {"flood_msgs": "value", "flood_rss": "rss_growth_mb", "flood_p99": "cell_p99_ms"},
    ),
]


def _p99_within_3x_median(prefix: str) -> Target:
    def check(m: Medians) -> bool | None:
        p99, median = m.get(f"{prefix}_p99", {}).get("ours"), m.get(f"{prefix}_median", {}).get("ours")
        return None if p99 is None or median is None else p99 <= 3 * median

    return Target("<= 3x median", check)


def _aggregate_at_least_single(row: str) -> Target:
    def check(m: Medians) -> bool | None:
        aggregate, single = m.get(row, {}).get("ours"), m.get("unary_tcp", {}).get("ours")
        return None if aggregate is None or single is None else aggregate >= single

    return Target(">= 1x single-client rate", check)


def _faster_raw_at_least(row: str, factor: float) -> Target:
    """ours >= factor x the faster of the raw ceilings (thread-pool and asyncio servers)."""

    def check(m: Medians) -> bool | None:
        sides = m.get(row, {})
        ceilings = [sides[side] for side in ("raw", "raw aio") if side in sides]
        return None if "ours" not in sides or not ceilings else sides["ours"] >= factor * max(ceilings)

    return Target(f">= {factor:g}x faster raw", check)


ROWS = [
    Row(
        "unary_tcp",
        "unary call, TCP",
        "calls/s",
        [ratio_at_least("unary_tcp", "upstream", 1.6), _faster_raw_at_least("unary_tcp", 0.9)],
    ),
    Row("unary_unix", "unary call, unix socket", "calls/s", [_faster_raw_at_least("unary_unix", 0.9)]),
    Row("serial_echo", "serial loop:// echo", "MB/s", [ratio_at_least("serial_echo", "upstream", 2)]),
    Row("net_echo", "network TCP echo", "MB/s", [ratio_at_least("net_echo", "upstream", 2)]),
    Row("flash", "storage flash 256 MiB", "MB/s", [ratio_at_least("flash", "upstream", 2)]),
    Row(
        "sd_flash",
        "flash 256 MiB onto a loop device (raw: dd oflag=direct)",
        "MB/s",
        [ratio_at_least("sd_flash", "raw", 0.5)],
    ),
    Row(
        "sd_bmap",
        "bmap flash of 1 GiB / 100 MiB mapped (image MB/s)",
        "MB/s",
        [ratio_at_least("sd_bmap", "full", 5)],
    ),
    Row(
        "connect",
        "connect to client tree",
        "ms",
        [ratio_at_most("connect", "upstream", 0.5), below("connect", 150, "ms")],
    ),
    Row("tree_1000", "1 000-driver report + tree", "ms", [below("tree_1000", 1000, "ms")]),
    Row(
        "concurrency_rate",
        "32 clients: aggregate",
        "calls/s",
        [_aggregate_at_least_single("concurrency_rate")],
    ),
    Row("concurrency_median", "32 clients: median latency", "ms"),
    Row("concurrency_p99", "32 clients: p99 latency", "ms", [_p99_within_3x_median("concurrency")]),
    Row(
        "channels_rate",
        "256 channels / 8 processes: aggregate",
        "calls/s",
        [_aggregate_at_least_single("channels_rate")],
    ),
    Row("channels_median", "256 channels: median latency", "ms"),
    Row("channels_p99", "256 channels: p99 latency", "ms", [_p99_within_3x_median("channels")]),
    Row("storm_idle", "power.on() latency, idle (median)", "ms"),
    Row("storm_median", "power.on() latency during 10 000 cancelled waits (median)", "ms"),
    Row("storm_p99", "power.on() latency during 10 000 cancelled waits (p99)", "ms"),
    Row(
        "can_rate",
        "CAN frames received while the exporter sends back to back",
        "frames/s",
        [ratio_at_least("can_rate", "upstream", 10)],
    ),
    Row("can_median", "CAN send -> receive round trip (median)", "ms"),
    Row("can_p99", "CAN send -> receive round trip (p99)", "ms"),
    Row(
        "can_cpu",
        "CAN CPU (client + exporter) per 10 000 frames",
        "s",
        [ratio_at_most("can_cpu", "upstream", 0.1)],
    ),
    Row(
        "screen_fps",
        "screen: frames/s drawn in Chromium (1024x768 MJPEG, cap 25)",
        "frames/s",
        [Target(">= 10 frames/s", lambda m: _cmp(m, "screen_fps", "ours", lambda o, _: o >= 10))],
    ),
    Row(
        "screen_kernel_cpu",
        "screen: kernel CPU while the view runs (% of one core)",
        "%",
        [below("screen_kernel_cpu", 50, "%")],
    ),
    Row("screen_snapshot", "QEMU screen snapshot() (median)", "ms", [below("screen_snapshot", 100, "ms")]),
    Row(
        "snmp",
        "PDU outlet on() over SNMP (pysnmp, net-snmp agent)",
        "calls/s",
        [_faster_raw_at_least("snmp", 0.5)],
    ),
    Row(
        "farm_list",
        "50-exporter farm: board list (server extension, new channels)",
        "ms",
        [below("farm_list", 1000, "ms")],
    ),
    Row(
        "farm_list_again",
        "50-exporter farm: board list again (channels kept)",
        "ms",
        [below("farm_list_again", 1000, "ms")],
    ),
    Row(
        "farm_connect",
        "50-exporter farm: selector connect, one board free",
        "ms",
        [below("farm_connect", 1000, "ms")],
    ),
    Row("farm_notebooks_one", "run-notebooks smoke test, 1 board", "s"),
    Row("farm_notebooks_many", "run-notebooks smoke test, 8 boards, --parallel 8", "s"),
    Row(
        "debugger_read",
        "debugger: read 1 MiB of guest memory",
        "MB/s",
        [ratio_at_least("debugger_read", "gdb", 0.5)],
    ),  # the time <= 2x gdb-multiarch's
    Row(
        "hosted_unary",
        "hosted upstream driver: unary call (upstream's client)",
        "calls/s",
        [ratio_at_least("hosted_unary", "upstream", 0.7)],
    ),
    Row(
        "hosted_echo",
        "hosted UnixNetwork echo (upstream's client)",
        "MB/s",
        [ratio_at_least("hosted_echo", "upstream", 0.7)],
    ),
    Row(
        "routed_unary",
        "unary call through a controller's router",
        "calls/s",
        [ratio_at_least("routed_unary", "upstream", 0.7)],
    ),
    Row("routed_unary_ours", "unary call through a controller's router, our exporter", "calls/s"),
    Row(
        "flood_msgs",
        "flood: comm msgs/s per widget (IOPub limit 1 000)",
        "msg/s",
        [at_most("flood_msgs", 30, "msg/s")],
    ),
    Row("flood_rss", "flood: kernel RSS growth", "MB", [below("flood_rss", 50, "MB")]),
    Row("flood_p99", "flood: trivial cell p99 latency", "ms", [below("flood_p99", 100, "ms")]),
]
