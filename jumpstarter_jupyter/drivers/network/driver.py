"""Network: byte streams to a service next to the exporter (a board's TCP port)."""

from __future__ import annotations

import os
from abc import abstractmethod
from dataclasses import dataclass

from jumpstarter_jupyter.driver import ByteStream, Driver, SocketStream, export, exportstream
from jumpstarter_jupyter.drivers.network.common import CLIENT, UPSTREAM_CLIENT

CONNECT_TIMEOUT = 10.0  # seconds to establish the TCP connection; the stream itself has no timeout


class NetworkInterface(Driver):
    """What every network driver exports (upstream's ``jumpstarter_driver_network`` wire names)."""

    client = CLIENT
    upstream_client = UPSTREAM_CLIENT

    @exportstream
    @abstractmethod
    def connect(self) -> ByteStream:
        """Open a byte stream to the service."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def address(self) -> str:
        """The service's address as a URL, e.g. ``tcp://127.0.0.1:8080``."""
        raise NotImplementedError


@dataclass
class TcpNetwork(NetworkInterface):
    """A TCP service at ``host``:``port``; ``enable_address: false`` keeps its address private."""

    host: str
    port: int
    enable_address: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1-65535, got {self.port}")

    @exportstream
    async def connect(self) -> SocketStream:
        """Open a TCP connection to ``host``:``port``; client EOF half-closes it."""
        try:
            return await SocketStream.open(self.host, self.port, CONNECT_TIMEOUT)
        except TimeoutError:
            raise TimeoutError(
                f"cannot connect to {self.host}:{self.port}: no answer within {CONNECT_TIMEOUT} s"
            ) from None
        except OSError as exc:  # asyncio's message quotes the address again: say the reason
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise OSError(f"cannot connect to {self.host}:{self.port}: {reason}") from None

    @export
    def address(self) -> str:
        """``tcp://HOST:PORT`` (IPv6 hosts in brackets)."""
        if not self.enable_address:
            raise ValueError("enable_address mode is not true in the exporter configuration")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"
