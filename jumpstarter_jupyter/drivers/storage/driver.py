"""Storage mux: switch a board's storage (an SD card) between the host and the DUT, write and read it."""

from __future__ import annotations

import lzma
import os
import tempfile
import threading
from abc import abstractmethod
from dataclasses import dataclass, field
from typing import IO, ClassVar

import zstandard

from jumpstarter_jupyter.driver import Driver, export
from jumpstarter_jupyter.drivers.storage.common import CLIENT, UPSTREAM_CLIENT
from jumpstarter_jupyter.protocol.metadata import CONTENT_ENCODING_KEY

POSITIONS = ("host", "dut", "off")
FILE_CARD = 4 << 30  # capacity of a card kept in a file (it has no size of its own): a small SD card
CHUNK = 1 << 20  # below the 4 MiB gRPC frame limit, large enough to be fast
# what a decompressor raises on bad or truncated input (gzip's BadGzipFile is an OSError)
DECODE_ERRORS = (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError)


class StorageMuxInterface(Driver):
    """What every storage mux exports (upstream's ``StorageMux`` wire names, plus ``state``)."""

    client = CLIENT
    upstream_client = UPSTREAM_CLIENT

    @export
    @abstractmethod
    def host(self) -> None:
        """Connect the storage to the host (the exporter)."""
        raise NotImplementedError

    @export
    @abstractmethod
    def dut(self) -> None:
        """Connect the storage to the DUT."""
        raise NotImplementedError

    @export
    @abstractmethod
    def off(self) -> None:
        """Disconnect the storage from both."""
        raise NotImplementedError

    @export
    @abstractmethod
    def write(self, handle: dict) -> None:
        """Copy every byte of the resource ``handle`` onto the storage."""
        raise NotImplementedError

    @export
    @abstractmethod
    def read(self, handle: dict) -> None:
        """Copy the storage's contents into the resource ``handle``."""
        raise NotImplementedError

    @export(readonly=True)
    @abstractmethod
    def state(self) -> str:
        """Where the storage is connected: ``"host"``, ``"dut"`` or ``"off"``."""
        raise NotImplementedError


@dataclass
class VirtualStorageMux(StorageMuxInterface):
    """A simulated board's SD card: the file at ``path``, connected to ``connected_to``.

    Writing or reading needs the storage on the host: a real mux would corrupt a card the
    running DUT is using, so this one refuses with an error saying so.
    """

    path: str
    connected_to: str = "dut"
    size: int = 0  # the card's capacity in bytes; 0: a block device's size, FILE_CARD for a card file
    lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    exclusive: ClassVar[bool] = True  # refuse host access unless switched to the host

    def __post_init__(self) -> None:
        if self.connected_to not in POSITIONS:
            raise ValueError(f"connected_to must be one of {', '.join(POSITIONS)}, got {self.connected_to!r}")
        if self.size < 0:
            raise ValueError(f"size must be >= 0 bytes (0: the card file's size), got {self.size}")

    def capacity(self) -> int:
        """Bytes the card holds: ``size``, else a block device's size, else ``FILE_CARD``."""
        if self.size:
            return self.size
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            with open(self.path, "rb") as card:
                return card.seek(0, os.SEEK_END)  # stat() says 0 for block devices
        return FILE_CARD

    @export
    def host(self) -> None:
        """Connect the storage to the host (the exporter)."""
        self._switch("host")

    @export
    def dut(self) -> None:
        """Connect the storage to the DUT."""
        self._switch("dut")

    @export
    def off(self) -> None:
        """Disconnect the storage from both."""
        self._switch("off")

    @export
    def write(self, handle: dict) -> None:
        """Copy every byte of the resource ``handle`` onto the storage (decompressing it if sent compressed)."""
        with self.resource(handle) as source:
            self.write_from(source, handle.get(CONTENT_ENCODING_KEY))

    def write_from(self, source: IO[bytes], encoding: str | None = None) -> int:
        """Write everything ``source`` yields onto the storage; returns the byte count.

        For in-process callers (a board's ``flash`` reading its own resource); ``encoding``
        names what ``source`` decompresses, for the error when the data is corrupt.
        """
        with self.lock:
            self._check_on_host("write")
            if os.path.exists(self.path) and not os.path.isfile(self.path):  # a block device: in place
                with open(self.path, "r+b") as target:
                    written = _copy_decoded(source, target, encoding, self.capacity(), partial=True)
            else:  # a file: the new image replaces the card only once it is complete
                written = self._replace(source, encoding)
        self.logger.info("wrote %d bytes to %s", written, self.path)
        return written

    def _replace(self, source: IO[bytes], encoding: str | None) -> int:
        capacity = self.capacity()
        directory, name = os.path.split(os.path.abspath(self.path))
        fd, staging = tempfile.mkstemp(prefix=f".{name}.", suffix=".flashing", dir=directory)
        try:
            with os.fdopen(fd, "wb") as target:
                written = _copy_decoded(source, target, encoding, capacity, partial=False)
            os.replace(staging, self.path)
        finally:
            if os.path.exists(staging):
                os.unlink(staging)
        return written

    @export
    def read(self, handle: dict) -> None:
        """Copy the storage's contents into the resource ``handle``."""
        with self.lock:
            self._check_on_host("read")
            with self.resource(handle) as target, open(self.path, "rb") as source:
                while chunk := source.read(CHUNK):
                    target.write(chunk)

    @export
    def state(self) -> str:
        """Where the storage is connected: ``"host"``, ``"dut"`` or ``"off"``."""
        return self.connected_to

    def _switch(self, position: str) -> None:
        with self.lock:  # waits for a transfer in progress: never switch under a write
            self.connected_to = position
        self.logger.info("storage connected to %s", position)

    def _check_on_host(self, action: str) -> None:
        if self.exclusive and self.connected_to != "host":
            raise RuntimeError(
                f"cannot {action} the storage while it is connected to {self.connected_to!r}: "
                "call host() first (writing under a running DUT would corrupt its card)"
            )


def _copy_decoded(
    source: IO[bytes], target: IO[bytes], encoding: str | None, capacity: int, partial: bool
) -> int:
    """Copy ``source`` (a decompressing reader when ``encoding`` is set) into ``target``, at most
    ``capacity`` bytes: a small compressed upload must not fill the exporter's disk."""
    written = 0
    try:
        while True:
            try:
                chunk = source.read(CHUNK)
            except DECODE_ERRORS as exc:
                if not encoding:
                    raise
                raise ValueError(f"the upload is not valid {encoding} data: {exc}") from None
            if not chunk:
                return written
            if written + len(chunk) > capacity:
                raise ValueError(
                    f"the image is larger than the card ({capacity} bytes)"
                    + (f" once decompressed ({encoding})" if encoding else "")
                )
            target.write(chunk)
            written += len(chunk)
    except Exception as exc:
        kept = (
            f"the card now holds a partial image ({written} bytes written)"
            if partial
            else "the card was left as it was"
        )
        raise type(exc)(f"{exc}; {kept}") from None


@dataclass
class MockStorageMux(VirtualStorageMux):
    """A storage mux over a private temporary file, removed when the exporter stops.

    Like upstream's MockStorageMux it starts on the host and accepts writes and reads in any
    position, so upstream scripts that never call ``host()`` keep working.
    """

    path: str = ""
    connected_to: str = "host"
    owns_path: bool = field(default=False, init=False, repr=False)
    exclusive: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:
            fd, self.path = tempfile.mkstemp(prefix="jmp-storage-", suffix=".img")
            os.close(fd)
            self.owns_path = True

    def teardown(self) -> None:
        if self.owns_path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
        super().teardown()
