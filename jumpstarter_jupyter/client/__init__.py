"""The client runtime: connect to an exporter and get its tree of driver clients."""

from __future__ import annotations

import os
from collections.abc import Callable

from jumpstarter_jupyter.client import pool
from jumpstarter_jupyter.client.base import DriverClient
from jumpstarter_jupyter.client.connection import Connection
from jumpstarter_jupyter.client.generic import GenericClient
from jumpstarter_jupyter.client.local import PrivateBoard
from jumpstarter_jupyter.client.tree import build

__all__ = ["DriverClient", "GenericClient", "connect", "resolve_endpoint"]


def resolve_endpoint(endpoint: str | None) -> str | None:
    """Explicit endpoint, else ``$JUMPSTARTER_HOST``, else None (meaning: a private board)."""
    return endpoint or os.environ.get("JUMPSTARTER_HOST") or None


def connect(endpoint: str | None = None, passphrase: str | None = None, *, tls_ca: str | None = None,
            name: str = "dut", lease: bool | None = None, wait: float | None = None, purpose: str = "",
            duration: float = 0, hooks: bool = True,
            on_queued: Callable[[int], None] | None = None) -> DriverClient:
    """Connect to an exporter and return the root of its client tree.

    Args:
        endpoint: ``host:port``, ``unix:/path`` or a socket path, or a board of the pool
            (``pool:NAME``, or a bare NAME found there; see ``client/pool.py``). Default:
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
        on_queued: called with the position in line while waiting.

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
    """
    endpoint = resolve_endpoint(endpoint)
    board = None
    if endpoint is None:
        board = PrivateBoard()
        endpoint = board.endpoint
    else:
        endpoint, passphrase = pool.resolve(endpoint, passphrase)
    if passphrase is None:
        passphrase = os.environ.get("JMP_GRPC_PASSPHRASE") or None
    if os.environ.get("JMP_GRPC_INSECURE"):
        tls_ca = None
    connection = None
    try:
        connection = Connection(endpoint, passphrase, tls_ca, name=name)
        connection.lease_options = dict(purpose=purpose, duration=duration)
        if lease is not False:
            status = connection.lease_status()
            if lease or (status is not None and status.required and not status.caller_controls):
                connection.acquire(status, purpose=purpose, duration=duration, wait=wait, hooks=hooks,
                                   on_queued=on_queued)
    except BaseException:
        if connection is not None:
            connection.close()
        if board:
            board.stop()
        raise
    root = build(connection)
    root.private_board = board
    return root
