"""The client runtime: connect to an exporter and get its tree of driver clients."""

from __future__ import annotations

import os
from collections.abc import Callable

from jumpstarter_jupyter.client import farm, pool
from jumpstarter_jupyter.client.base import DriverClient
from jumpstarter_jupyter.client.connection import Connection
from jumpstarter_jupyter.client.controller import ControllerLease, load_client_config
from jumpstarter_jupyter.client.generic import GenericClient
from jumpstarter_jupyter.client.local import PrivateBoard
from jumpstarter_jupyter.client.tree import build

__all__ = ["DriverClient", "GenericClient", "connect", "resolve_endpoint"]


def resolve_endpoint(endpoint: str | None) -> str | None:
    """Explicit endpoint, else ``$JUMPSTARTER_HOST``, else None (meaning: a private board)."""
    return endpoint or os.environ.get("JUMPSTARTER_HOST") or None


def connect(
    endpoint: str | None = None,
    passphrase: str | None = None,
    *,
    tls_ca: str | None = None,
    name: str = "dut",
    lease: bool | None = None,
    wait: float | None = None,
    purpose: str = "",
    duration: float = 0,
    hooks: bool = True,
    on_queued: Callable[[int], None] | None = None,
    selector: str | None = None,
    lease_token: str | None = None,
    controller: str | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> DriverClient:
    """Connect to an exporter and return the root of its client tree.

    Args:
        endpoint: ``host:port``, ``unix:/path`` or a socket path, or a board of the pool
            (``pool:NAME``, or a bare NAME found there; see ``client/pool.py``; an entry naming a
            ``controller`` and ``selector`` is leased from that controller, as ``controller=`` is). Default:
            ``$JUMPSTARTER_HOST``, else a private virtual board started for this process
            (stopped by ``close()``).
        passphrase: the exporter's passphrase; default: the pool entry's ``passphrase_file``,
            else ``$JMP_GRPC_PASSPHRASE``.
        tls_ca: PEM file of the CA to trust for TLS ("" = the system roots); None = plaintext.
            ``$JMP_GRPC_INSECURE`` forces plaintext, as upstream's ``j`` does.
        name: what errors and the CLI call the root (``dut.power.on: ...``).
        lease: ``None`` takes the board's lease when the exporter requires one, ``True``
            always, ``False`` never (a watcher: it sees everything and controls nothing).
        wait: seconds to wait in line for the lease (None: as long as it takes), else
            :class:`~jumpstarter_jupyter.errors.LeaseTimeout`.
        purpose, duration: shown to others / seconds wanted (0: the exporter's default).
        hooks: False asks for a lease that runs none of the exporter's lease hooks (what
            ``jumpstarter-jupyter j`` uses for one command).
        on_queued: called with the position in line while waiting (with a selector: the best
            place across the matching boards).
        selector: instead of an endpoint, any board of the pool whose labels match this
            Kubernetes label selector (``"soc=imx8mp,site!=lab2"``): a free one at once, else
            the first one released while waiting in line at all of them (``client/farm.py``).
            ``dut.connection.board`` names the board taken.
        lease_token: the token of a lease someone else took for this process (``run-notebooks``
            hands its runs theirs): calls carry it, and no lease is asked for.
        controller: the name of an upstream client config (``~/.config/jumpstarter/clients/NAME.yaml``,
            see ``client/controller.py``): lease an exporter matching ``selector`` from that
            controller for ``duration`` seconds (0: 30 minutes) and reach it through its router.
            ``dut.connection.board`` names the exporter; ``close()`` deletes the lease.
        on_wait: called with the controller's reason while the lease is pending.

    The lease is ``dut.lease`` (``extend()``, ``release()``); ``close()`` releases it.

    The client tree follows the exporter's driver tree; here the virtual board, served on a
    private socket (a lab host's exporter would be ``connect("lab-host:7777")``):

    >>> from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
    >>> from jumpstarter_jupyter.testing import exporter
    >>> with exporter(VirtualBoard.create()) as board, connect(board.address) as dut:
    ...     sorted(dut.children)
    ...     dut.power.on()
    ...     dut.power.state()
    ['button', 'can', 'led', 'network', 'power', 'serial', 'storage']
    True

    A call that cannot be made names the driver, the method and the reason:

    >>> with exporter(VirtualBoard.create()) as board, connect(board.address) as dut:
    ...     dut.power.cycle(wait=-1)
    Traceback (most recent call last):
    ...
    jumpstarter_jupyter.errors.DriverInvalidArgument: dut.power.cycle: wait must be >= 0 seconds, got -1

    Any free board of the pool whose labels match (``client/farm.py``):

    >>> dut = connect(selector="soc=imx8mp", purpose="bring-up")   # doctest: +SKIP

    An exporter leased from an upstream controller (a client config named ``lab``):

    >>> dut = connect(controller="lab", selector="board=rpi4")   # doctest: +SKIP
    """
    if controller is not None:
        if endpoint is not None or selector is None:
            raise ValueError("connect: with a controller, give a selector and no endpoint")
        return _connect_controller(
            controller, selector, name=name, wait=wait, duration=duration, on_wait=on_wait
        )
    if selector is not None:
        if endpoint is not None:
            raise ValueError("connect: give an endpoint or a selector, not both")
        return _connect_any(
            selector,
            tls_ca=tls_ca,
            name=name,
            lease=lease,
            wait=wait,
            purpose=purpose,
            duration=duration,
            hooks=hooks,
            on_queued=on_queued,
        )
    endpoint = resolve_endpoint(endpoint)
    board = None
    pool_name = None
    if endpoint is None:
        board = PrivateBoard()
        endpoint = board.endpoint
    else:
        entry = pool.lookup(endpoint)
        if entry is not None and entry.controller is not None:
            return _connect_controller(
                entry.controller, entry.selector, name=name, wait=wait, duration=duration, on_wait=on_wait
            )
        pool_name = endpoint if entry is not None else None
        endpoint, passphrase = pool.resolve(endpoint, passphrase)
    if passphrase is None:
        passphrase = os.environ.get("JMP_GRPC_PASSPHRASE") or None
    if os.environ.get("JMP_GRPC_INSECURE"):
        tls_ca = None
    connection = None
    try:
        connection = Connection(endpoint, passphrase, tls_ca, name=name, lease_token=lease_token)
        connection.board = pool_name
        connection.lease_options = dict(purpose=purpose, duration=duration)
        if lease is not False and not lease_token:
            status = connection.lease_status()
            if lease or (status is not None and status.required and not status.caller_controls):
                connection.acquire(
                    status, purpose=purpose, duration=duration, wait=wait, hooks=hooks, on_queued=on_queued
                )
    except BaseException:
        if connection is not None:
            connection.close()
        if board:
            board.stop()
        raise
    root = build(connection)
    root.private_board = board
    return root


def _connect_any(
    selector: str,
    *,
    tls_ca: str | None,
    name: str,
    lease: bool | None,
    wait: float | None,
    purpose: str,
    duration: float,
    hooks: bool,
    on_queued: Callable[[int], None] | None,
) -> DriverClient:
    """``connect(selector=...)``: lease any matching board of the pool, then connect to it."""
    boards = farm.find(selector)
    if lease is False:  # a watcher: the first matching board, free ones first
        chosen, held = sorted(boards, key=lambda b: not b.state.free)[0], None
    else:
        chosen, held = farm.take_any(
            boards,
            purpose=lambda board: purpose,
            duration=duration,
            wait=wait,
            hooks=hooks,
            on_queued=on_queued,
        )
    farm.close(boards, keep=chosen if held is not None else None)
    connection = None
    try:
        connection = Connection(chosen.entry.endpoint, chosen.passphrase, tls_ca, name=name)
        connection.board = chosen.name
        connection.lease_options = dict(purpose=purpose, duration=duration)
        if held is not None:
            connection.adopt(held, channel=chosen.channel)
    except BaseException:
        if held is not None:
            held.release()
            chosen.channel.close()
        if connection is not None:
            connection.close()
        raise
    root = build(connection)
    root.private_board = None
    return root


def _connect_controller(
    controller: str,
    selector: str,
    *,
    name: str,
    wait: float | None,
    duration: float,
    on_wait: Callable[[str], None] | None,
) -> DriverClient:
    """``connect(controller=..., selector=...)``: lease from an upstream controller, connect through its router."""
    lease = ControllerLease(load_client_config(controller), selector, duration)
    lease.acquire(wait, on_wait)
    return connect_leased(lease, name)


def connect_leased(lease: ControllerLease, name: str = "dut") -> DriverClient:
    """The client tree of the exporter an acquired controller ``lease`` reaches (``%jmp connect
    --controller`` acquires it itself, to show the wait); ``close()`` deletes the lease."""
    try:
        # the controller's lease is the exporter's lease: calls through the router run under it
        connection = Connection(f"unix:{lease.socket}", name=name)
    except BaseException:
        lease.release()
        raise
    connection.board = lease.exporter
    connection.endpoint = f"{lease.exporter} (leased from {lease.where})"  # what errors and %jmp status say
    connection.controller_lease = lease
    root = build(connection)
    root.private_board = None
    return root
