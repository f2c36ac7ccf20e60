"""Writing images onto a block device: exclusive, large aligned direct writes, fsync, the
partition table re-read, checksums per bmap range, read-back verification.

The device is opened with ``O_EXCL``: while we write, the kernel refuses to mount it, and the
open itself fails if it is mounted, in swap or held by device-mapper. ``O_DIRECT`` writes
from a page-aligned buffer skip the page cache (as ``dd oflag=direct`` does), so ``fsync``
has little left to do and the host's memory is not flooded with the image.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import mmap
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, Self

from jumpstarter_jupyter.drivers.storage.bmap import Bmap, MappedRange
from jumpstarter_jupyter.drivers.storage.common import StorageRefused

CHUNK = 4 << 20  # bytes per write: large enough for full speed, as dd bs=4M
BUFFERS = 4  # CHUNKs in flight: one filling while others are hashed (two ranges at once) and written
BLKRRPART = 0x125F  # <linux/fs.h>: re-read the partition table
BLKSSZGET = 0x1268  # <linux/fs.h>: logical block size
logger = logging.getLogger("driver.flashing")


@dataclass
class FlashFigures:
    """What a flash did: the device, bytes written, seconds, and how (bmap, verified)."""

    device: str
    image_size: int = 0  # bytes of the (decompressed) image
    written: int = 0  # bytes written to the device (the mapped bytes with a bmap)
    seconds: float = 0.0
    bmap: bool = False
    verified: bool = False
    reread: bool = False  # the kernel re-read the partition table
    started: float = field(default_factory=time.monotonic, repr=False)

    def to_wire(self) -> dict:
        """Plain data for the client: what ``flash()`` returns and ``info()`` keeps as the last flash."""
        rate = self.written / self.seconds / 1e6 if self.seconds else 0.0
        return {
            "device": self.device,
            "image_size": self.image_size,
            "written": self.written,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(rate, 1),
            "bmap": self.bmap,
            "verified": self.verified,
            "partitions_reread": self.reread,
        }


class DeviceWriter:
    """An exclusive direct-I/O handle on a whole disk (a context manager)."""

    def __init__(
        self,
        path: str,
        decode_errors: tuple[type[BaseException], ...] = (),
        fsync_timeout: float = 900,
        encoding: str | None = None,
    ):
        self.path, self.fsync_timeout, self.encoding = path, fsync_timeout, encoding
        self.decode_errors = decode_errors
        try:
            self.fd = _open_exclusive(path)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise StorageRefused(
                    f"refusing to write {path}: it is in use (mounted, swap, "
                    "or held by another device or program)"
                ) from None
            raise
        self.buffer = SPARE.take()
        self.sector = _sector_size(self.fd)
        self.capacity = os.lseek(self.fd, 0, os.SEEK_END)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)
        SPARE.give(self.buffer)

    def write_stream(self, source: IO[bytes], digests: list[bytes] | None = None) -> int:
        """Write all of ``source`` from offset 0; returns the byte count. With ``digests``, a
        SHA-256 per chunk is kept for :meth:`verify`."""
        offset = 0
        with _Pipeline(self) as pipeline:
            while True:
                buffer = pipeline.free()
                filled = self._fill(source, CHUNK, buffer)
                if not filled:
                    return offset
                if offset + filled > self.capacity:
                    raise ValueError(
                        f"the image is larger than {self.path} ({self.capacity} bytes)"
                        + (f" once decompressed ({self.encoding})" if self.encoding else "")
                    )
                keep = None if digests is None else lambda data: digests.append(hashlib.sha256(data).digest())
                pipeline.write(offset, filled, keep)
                offset += filled

    def write_ranges(self, source: IO[bytes], bmap: Bmap) -> int:
        """Write the mapped ranges of ``bmap`` that ``source`` carries back to back, checking
        each range's checksum; returns the bytes written."""
        if bmap.image_size > self.capacity:
            raise StorageRefused(
                f"refusing to write {self.path}: it is smaller than the image "
                f"({self.capacity} bytes < {bmap.image_size} bytes)"
            )
        written = 0
        with _Pipeline(self) as pipeline:
            for mapped in bmap.ranges:
                self._write_range(source, bmap, mapped, pipeline)
                written += bmap.span(mapped)[1]
            if source.read(1):
                raise ValueError("the upload carries more bytes than the bmap's ranges")
        return written

    def _write_range(self, source: IO[bytes], bmap: Bmap, mapped: MappedRange, pipeline: _Pipeline) -> None:
        offset, length = bmap.span(mapped)
        digest = hashlib.new(bmap.checksum_type)
        done = 0
        while done < length:
            buffer = pipeline.free()
            filled = self._fill(source, min(CHUNK, length - done), buffer)
            if not filled:
                raise ValueError(
                    f"the upload ended inside {bmap.describe(mapped)} ({done} of {length} bytes)"
                )
            pipeline.write(offset + done, filled, digest.update)
            done += filled

        def check() -> None:
            if digest.hexdigest() != mapped.checksum:
                raise ValueError(
                    f"checksum mismatch in {bmap.describe(mapped)}: {bmap.checksum_type} "
                    f"{digest.hexdigest()}, the bmap says {mapped.checksum}; the flash failed"
                )

        pipeline.after_hashing(check)

    def verify_stream(self, size: int, digests: list[bytes]) -> None:
        """Read the first ``size`` bytes back and compare them chunk by chunk with ``digests``."""
        for index, offset in enumerate(range(0, size, CHUNK)):
            length = min(CHUNK, size - offset)
            if hashlib.sha256(self._read(offset, length)).digest() != digests[index]:
                raise ValueError(
                    f"verify failed: {self.path} differs from the image in bytes "
                    f"{offset}-{offset + length - 1}"
                )

    def verify_ranges(self, bmap: Bmap) -> None:
        """Read every mapped range back and check it against its checksum."""
        for mapped in bmap.ranges:
            offset, length = bmap.span(mapped)
            digest = hashlib.new(bmap.checksum_type)
            for start in range(offset, offset + length, CHUNK):
                digest.update(self._read(start, min(CHUNK, offset + length - start)))
            if digest.hexdigest() != mapped.checksum:
                raise ValueError(
                    f"verify failed: {self.path} differs from the image in {bmap.describe(mapped)}"
                )

    def finish(self) -> bool:
        """fsync (bounded by ``fsync_timeout``), then have the kernel re-read the partition table;
        False if it would not (a loop device without partition scanning)."""
        done, failure = threading.Event(), []

        def sync() -> None:
            try:
                os.fsync(self.fd)
            except OSError as exc:
                failure.append(exc)
            done.set()

        threading.Thread(target=sync, name=f"fsync {self.path}", daemon=True).start()
        if not done.wait(self.fsync_timeout):
            raise TimeoutError(
                f"fsync of {self.path} did not finish within storage_fsync_timeout="
                f"{self.fsync_timeout:g} s: the card may be failing"
            )
        if failure:
            raise failure[0]
        try:
            fcntl.ioctl(self.fd, BLKRRPART)
            return True
        except OSError as exc:  # a loop device without partition scanning says EINVAL: nothing to re-read
            logger.log(
                logging.DEBUG if exc.errno == errno.EINVAL else logging.WARNING,
                "%s: the kernel did not re-read the partition table: %s",
                self.path,
                exc,
            )
            return False

    def _fill(self, source: IO[bytes], want: int, buffer: mmap.mmap) -> int:
        """Read up to ``want`` bytes of ``source`` into ``buffer``; fewer only at its end."""
        view = memoryview(buffer)
        filled = 0
        try:
            while filled < want:
                got = source.readinto(view[filled:want])
                if not got:
                    break
                filled += got
        except self.decode_errors as exc:
            if not self.encoding:
                raise
            raise ValueError(f"the upload is not valid {self.encoding} data: {exc}") from None
        finally:
            view.release()
        return filled

    def _write(self, buffer: mmap.mmap, offset: int, length: int) -> None:
        direct = length % self.sector == 0 == offset % self.sector  # an unaligned tail goes through the cache
        if not direct:
            self._set_direct(False)
        try:
            with memoryview(buffer) as view:
                done = 0
                while done < length:
                    done += os.pwrite(self.fd, view[done:length], offset + done)
        finally:
            if not direct:
                self._set_direct(True)

    def _read(self, offset: int, length: int) -> bytes:
        aligned = -(-length // self.sector) * self.sector  # direct reads come in whole sectors
        with memoryview(self.buffer) as view:
            got = os.preadv(self.fd, [view[:aligned]], offset)
            return bytes(view[: min(got, length)])

    def _set_direct(self, on: bool) -> None:
        flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, flags | os.O_DIRECT if on else flags & ~os.O_DIRECT)


class _Pipeline:
    """``BUFFERS`` buffers: the client's next bytes fill one while others are written (``pwrite``
    releases the GIL) and, when checksums are wanted, hashed on threads of their own (hashlib
    releases the GIL too), so receiving, hashing and writing overlap. A failed write or check
    raises from the next :meth:`free`, or when the block ends."""

    def __init__(self, writer: DeviceWriter):
        self.writer, self.current = writer, 0
        self.buffers = [writer.buffer, *(SPARE.take() for _ in range(BUFFERS - 1))]
        self.writes = ThreadPoolExecutor(1, thread_name_prefix=f"write {writer.path}")
        # two hashing threads, a range's hashes all on one (in order), the next range's on the other
        self.lanes = [ThreadPoolExecutor(1, thread_name_prefix=f"hash {writer.path}") for _ in range(2)]
        self.lane = 0
        self.using: list[list[Future]] = [[] for _ in self.buffers]  # per buffer: its write and hash
        self.checks: list[Future] = []  # checksum comparisons queued behind the hashes

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.writes.shutdown()  # waits for the work in flight
        for lane in self.lanes:
            lane.shutdown()
        for buffer in self.buffers[1:]:
            SPARE.give(buffer)
        if exc[0] is None:  # their errors, if nothing else went wrong first
            for future in [*(f for using in self.using for f in using), *self.checks]:
                future.result()

    def free(self) -> mmap.mmap:
        """The buffer written longest ago, once its write and hash are done: fill it, then :meth:`write` it."""
        self.current = (self.current + 1) % len(self.buffers)
        for future in self.using[self.current]:
            future.result()
        for future in [f for f in self.checks if f.done()]:
            self.checks.remove(future)
            future.result()
        return self.buffers[self.current]

    def write(self, offset: int, length: int, digest: Callable[[memoryview], object] | None = None) -> None:
        """Write the buffer just filled at ``offset``; ``digest(bytes)`` hashes them meanwhile."""
        buffer = self.buffers[self.current]
        self.using[self.current] = [self.writes.submit(self.writer._write, buffer, offset, length)]
        if digest is not None:
            self.using[self.current].append(self.lanes[self.lane].submit(_hash, digest, buffer, length))

    def after_hashing(self, check: Callable[[], None]) -> None:
        """Run ``check`` once the current range is hashed; the next range hashes beside it."""
        self.checks.append(self.lanes[self.lane].submit(check))
        self.lane ^= 1


def _hash(digest: Callable[[memoryview], object], buffer: mmap.mmap, length: int) -> None:
    with memoryview(buffer) as view, view[:length] as data:  # released before the buffer is reused
        digest(data)


class _Spare:
    """Page-aligned ``CHUNK`` buffers (as O_DIRECT needs) kept between flashes: a fresh one's
    pages cost about 1.5 ms each to put in place, a flash's fixed cost twice over otherwise.
    It keeps at most ``BUFFERS``, one flash's worth."""

    def __init__(self) -> None:
        self._free: list[mmap.mmap] = []
        self._lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self._lock:
            if self._free:
                return self._free.pop()
        return mmap.mmap(-1, CHUNK, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | mmap.MAP_POPULATE)

    def give(self, buffer: mmap.mmap) -> None:
        with self._lock:
            if len(self._free) < BUFFERS:
                self._free.append(buffer)
                return
        buffer.close()


SPARE = _Spare()


def _open_exclusive(path: str) -> int:
    """Open ``path`` for direct exclusive writing; without O_DIRECT where the device refuses it."""
    flags = os.O_RDWR | os.O_EXCL | os.O_CLOEXEC
    try:
        return os.open(path, flags | os.O_DIRECT)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        logger.warning("%s refuses direct I/O: writing through the page cache", path)
        return os.open(path, flags)


def _sector_size(fd: int) -> int:
    """The device's logical block size (what O_DIRECT aligns to); 512 if it will not say."""
    try:
        return int.from_bytes(fcntl.ioctl(fd, BLKSSZGET, b"\0" * 4), "little") or 512
    except OSError:
        return 512


def read_device(path: str, size: int, sink: IO[bytes]) -> int:
    """Copy the first ``size`` bytes of the device ``path`` into ``sink``; returns the count."""
    copied = 0
    with open(path, "rb", buffering=0) as device:
        while copied < size:
            chunk = device.read(min(CHUNK, size - copied))
            if not chunk:
                break
            sink.write(chunk)
            copied += len(chunk)
    return copied
