"""The pool: boards named in ``jumpstarter-pool.yaml``, so people say ``bench-1``, not an address.

The file lives in Jupyter's config path: system-wide (``{sys.prefix}/etc/jupyter/``,
``/etc/jupyter/``) for whoever runs the hub, per user in ``~/.jupyter/`` or
``$JUPYTER_CONFIG_DIR``. Every file found is read; per name, the user's entry wins::

    exporters:
      bench-1:
        endpoint: 10.0.0.5:7777
        passphrase_file: /etc/jumpstarter/bench-1.pass        # optional
        admin_passphrase_file: /etc/jumpstarter/admin.pass    # optional: may force-release
        labels: {board: rpi4}                                 # optional
        description: Raspberry Pi 4 on the left bench         # optional

A board an upstream Jumpstarter controller leases names the client config (``controller``,
``~/.config/jumpstarter/clients/NAME.yaml``) and a ``selector`` instead of an endpoint::

      lab-rpi:
        controller: lab                                       # the client config's name
        selector: board=rpi4                                  # any exporter the controller has

Such entries are not probed (the controller knows their state); connecting to one leases a
matching exporter from the controller (``client/controller.py``).

Names resolve wherever an endpoint is accepted: ``pool:NAME`` always means a pool entry; a bare
name (no ``/`` or ``:``) is looked up in the pool first, else it is a unix socket path as before.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from jupyter_core.paths import jupyter_config_dir, jupyter_config_path

from jumpstarter_jupyter.client.connection import channel_target
from jumpstarter_jupyter.durations import format_duration
from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.protocol.metadata import PASSPHRASE_KEY
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc, lease_pb2, lease_pb2_grpc
from jumpstarter_jupyter.selector import SelectorError, parse
from jumpstarter_jupyter.yamlfile import YamlReader, mapping, read_secret, read_yaml

POOL_FILE = "jumpstarter-pool.yaml"
POOL_PREFIX = "pool:"
ENTRY_KEYS = {"endpoint", "passphrase_file", "admin_passphrase_file", "labels", "description"}
CONTROLLER_KEYS = {"controller", "selector", "description"}  # a board an upstream controller leases
PROBE_TIMEOUT = 2.0  # seconds a state probe waits for an exporter


@dataclass(frozen=True)
class PoolEntry:
    """One board of the pool, and the file that named it."""

    name: str
    endpoint: str
    source: str
    passphrase_file: str | None = None
    admin_passphrase_file: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    controller: str | None = None  # an upstream client config's name: leased from that controller
    selector: str | None = None  # with controller: which exporters it may lease

    def passphrase(self) -> str | None:
        """The exporter's passphrase from ``passphrase_file`` (None without one)."""
        return self._secret(self.passphrase_file, "passphrase_file")

    def admin_passphrase(self) -> str | None:
        """The admin credential from ``admin_passphrase_file`` (None without one)."""
        return self._secret(self.admin_passphrase_file, "admin_passphrase_file")

    def _secret(self, path: str | None, key: str) -> str | None:
        try:
            return None if path is None else read_secret(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{self.source}: exporters.{self.name}.{key}: {exc}") from None


def pool_files() -> list[Path]:
    """Where pool files may be, lowest precedence first (the user's own directory last)."""
    user = Path(jupyter_config_dir())
    others = [Path(d) for d in jupyter_config_path() if Path(d) != user]
    return [directory / POOL_FILE for directory in reversed(others)] + [user / POOL_FILE]


def load_pool(controllers: bool = False) -> dict[str, PoolEntry]:
    """Every pool file's boards by name; a name in a later (more personal) file wins. Entries a
    controller leases only with ``controllers`` (they have no endpoint to probe)."""
    pool: dict[str, PoolEntry] = {}
    for path in pool_files():
        if path.is_file():
            pool.update(parse_pool(path.read_text(encoding="utf-8"), str(path)))
    return {name: entry for name, entry in pool.items() if controllers or entry.controller is None}


def parse_pool(text: str, source: str) -> dict[str, PoolEntry]:
    """The boards of one pool file; a malformed one names the file, the YAML path and the line."""
    data, reader = read_yaml(text, source)
    exporters = mapping(reader, data, "", {"exporters"}).get("exporters")
    if exporters is None:
        return {}
    if not isinstance(exporters, dict):
        raise reader.error("exporters", f"expected a mapping of board names to entries, got {exporters!r}")
    pool = {}
    for name, value in exporters.items():
        path = f"exporters.{name}"
        if not name or "/" in name or ":" in name:
            raise reader.error(path, "a board name has no '/' or ':' (it would read as an address)")
        entry = mapping(reader, value, path, ENTRY_KEYS | CONTROLLER_KEYS)
        if "controller" in entry or "selector" in entry:
            pool[name] = _controller_entry(reader, entry, name, path, source)
            continue
        if not isinstance(entry.get("endpoint"), str) or not entry["endpoint"]:
            raise reader.error(
                f"{path}.endpoint" if "endpoint" in entry else path,
                "expected the exporter's endpoint (host:port, unix:/path)",
            )
        for key in ("passphrase_file", "admin_passphrase_file", "description"):
            if key in entry and not isinstance(entry[key], str):
                raise reader.error(f"{path}.{key}", f"expected text, got {entry[key]!r}")
        labels = entry.get("labels") or {}
        if not isinstance(labels, dict) or not all(isinstance(v, (str, int, float)) for v in labels.values()):
            raise reader.error(
                f"{path}.labels", f"expected a mapping of label names to values, got {labels!r}"
            )
        pool[name] = PoolEntry(
            name=name,
            endpoint=entry["endpoint"],
            source=source,
            passphrase_file=entry.get("passphrase_file"),
            admin_passphrase_file=entry.get("admin_passphrase_file"),
            labels={k: str(v) for k, v in labels.items()},
            description=entry.get("description", ""),
        )
    return pool


def _controller_entry(reader: YamlReader, entry: dict, name: str, path: str, source: str) -> PoolEntry:
    """A board leased from an upstream controller: ``controller`` and ``selector``, no endpoint."""
    for key, expected in (("controller", "the client config's name"), ("selector", "a label selector")):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise reader.error(f"{path}.{key}" if key in entry else path, f"expected {key}: {expected}")
    mapping(reader, entry, path, CONTROLLER_KEYS)  # no endpoint, passphrase or labels: the controller's
    try:
        parse(entry["selector"])
    except SelectorError as exc:
        raise reader.error(f"{path}.selector", str(exc)) from None
    return PoolEntry(
        name=name,
        endpoint="",
        source=source,
        description=entry.get("description", ""),
        controller=entry["controller"],
        selector=entry["selector"],
    )


def lookup(endpoint: str) -> PoolEntry | None:
    """The pool entry ``endpoint`` names, if it names one (see the module's rules)."""
    if endpoint.startswith(POOL_PREFIX):
        name = endpoint[len(POOL_PREFIX) :]
        pool = load_pool(controllers=True)
        if name not in pool:
            known = ", ".join(sorted(pool)) or "none"
            raise ConfigError(
                f"no board named {name!r} in the pool (boards: {known}; files read: "
                f"{', '.join(str(p) for p in pool_files() if p.is_file()) or 'none'})"
            )
        return pool[name]
    if "/" in endpoint or ":" in endpoint:
        return None
    return load_pool(controllers=True).get(endpoint)


@dataclass
class BoardState:
    """What the devices sidebar and ``%jmp pool`` show of one board, probed just now."""

    name: str
    endpoint: str
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    reachable: bool = False
    error: str = ""
    drivers: int = 0
    leases: bool = False  # the exporter has a lease service
    required: bool = False
    holder: str = ""
    purpose: str = ""
    since: float = 0.0
    remaining: float = 0.0
    verified: bool = False
    kernel_id: str = ""
    server: str = ""
    queue: list[str] = field(default_factory=list)
    offered: bool = False  # the board is offered to the first in line
    heartbeat: float = 10.0  # seconds: the exporter's lease heartbeat period
    hub_identity: bool = False  # the exporter verifies JupyterHub users

    @property
    def free(self) -> bool:
        """Nobody holds the board or waits for it (and it can be leased)."""
        return self.reachable and self.leases and not self.holder and not self.queue

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "free": self.free}


class Probe:
    """One exporter's report and lease status, both asked at once (gRPC futures): many probes
    started together cost one round trip, not one each."""

    def __init__(
        self,
        name: str,
        endpoint: str,
        passphrase: str | None,
        channel: grpc.Channel,
        timeout: float = PROBE_TIMEOUT,
    ):
        self.name, self.endpoint = name, endpoint
        metadata = ((PASSPHRASE_KEY, passphrase),) if passphrase else ()
        self._report = jumpstarter_pb2_grpc.ExporterServiceStub(channel).GetReport.future(
            empty_pb2.Empty(), metadata=metadata, timeout=timeout
        )
        self._status = lease_pb2_grpc.LeaseServiceStub(channel).Status.future(
            lease_pb2.StatusRequest(), metadata=metadata, timeout=timeout
        )

    def state(self) -> BoardState:
        """What the exporter answered (waiting for it); its labels are the exporter's."""
        state = BoardState(name=self.name, endpoint=self.endpoint)
        try:
            report = self._report.result()
            state.reachable, state.drivers = True, max(0, len(report.reports) - 1)
            state.labels = dict(report.labels)
            _take_status(state, self._status.result())
        except grpc.RpcError as err:
            if not state.reachable:
                state.error = _why(err)
        return state


def _take_status(state: BoardState, status: lease_pb2.LeaseStatus) -> None:
    state.leases, state.required = True, status.required
    state.heartbeat, state.hub_identity = status.heartbeat_seconds, status.hub_identity
    state.queue, state.offered = [waiter.holder for waiter in status.queue], status.offered
    if status.HasField("lease"):
        info = status.lease
        state.holder, state.purpose, state.since, state.verified = (
            info.holder,
            info.purpose,
            info.since,
            info.verified,
        )
        state.remaining = max(0.0, info.expires - time.time())
        state.kernel_id, state.server = info.kernel_id, info.server


def _why(err: grpc.RpcError) -> str:
    if err.code() == grpc.StatusCode.UNAUTHENTICATED:
        return "the exporter refused the passphrase"
    if err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return "not reachable"
    return f"{err.code().name}: {err.details()}"


def pool_states(entries: dict[str, PoolEntry] | None = None) -> Iterator[BoardState]:
    """Probe every board of the pool, all at once (fresh channels; for a cell, not a polling loop)."""
    channels = []
    try:
        probes = []
        for entry in (load_pool() if entries is None else entries).values():
            channels.append(grpc.insecure_channel(channel_target(entry.endpoint)))
            probes.append((entry, probe_entry(entry, channels[-1])))
        for entry, started in probes:
            yield board_state(entry, started)
    finally:
        for channel in channels:
            channel.close()


def probe_entry(entry: PoolEntry, channel: grpc.Channel) -> Probe | str:
    """Start probing the board of ``entry`` on ``channel`` (a broken passphrase_file: why, as text)."""
    try:
        return Probe(entry.name, entry.endpoint, entry.passphrase(), channel)
    except ConfigError as exc:
        return str(exc)


def board_state(entry: PoolEntry, probed: Probe | str) -> BoardState:
    """The state a probe found, with the entry's description; the pool's labels add to the
    exporter's and win (the pool is the lab admin's file)."""
    if isinstance(probed, str):
        return BoardState(
            name=entry.name,
            endpoint=entry.endpoint,
            error=probed,
            labels=dict(entry.labels),
            description=entry.description,
        )
    state = probed.state()
    state.description, state.labels = entry.description, {**state.labels, **entry.labels}
    return state


def resolve(endpoint: str, passphrase: str | None = None) -> tuple[str, str | None]:
    """``(endpoint, passphrase)`` to dial: a pool name becomes its entry's endpoint, and its
    ``passphrase_file`` is read unless a passphrase was given."""
    entry = lookup(endpoint)
    if entry is None:
        return endpoint, passphrase
    if entry.controller is not None:  # connect() leases these itself; here no address is known yet
        raise ConfigError(
            f"pool board {entry.name!r} ({entry.source}) has no endpoint: controller {entry.controller} "
            f"leases an exporter matching {entry.selector!r} to jj.connect({entry.name!r}) or "
            f"%jmp connect {entry.name}"
        )
    return entry.endpoint, passphrase if passphrase is not None else entry.passphrase()


def describe_state(state: BoardState) -> str:
    """``free``, ``held by alice@lab (bring-up), 12 min left; 1 waiting``, ``not reachable``."""
    if not state.reachable:
        return state.error or "not reachable"
    if not state.leases:
        return f"{state.drivers} drivers, no leases (an upstream exporter)"
    if not state.holder:
        held = "free" if state.required else "free (leases optional)"
    else:
        purpose = f" ({state.purpose})" if state.purpose else ""
        held = f"held by {state.holder}{purpose}, {format_duration(state.remaining)} left"
    waiting = f"; {len(state.queue)} waiting" if state.queue else ""
    return f"{state.drivers} drivers, {held}{waiting}"
