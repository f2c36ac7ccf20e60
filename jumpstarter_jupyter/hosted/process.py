"""The upstream exporter process that serves a config's hosted drivers, and the calls into it.

One process per exporter serves every hosted entry (one Python environment, one start-up
cost); ``child.py`` is what it runs. It is started, and restarted when it dies, by one
supervisor thread: ``setpriv --pdeathsig`` ties a child to the *thread* that forked it, and this
thread lives as long as the exporter. Should our exporter die (even by SIGKILL) the kernel
sends the child SIGTERM, and the child kills its process group (itself and whatever its drivers
started); the end of its stdin pipe does the same where setpriv is missing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

from jumpstarter_jupyter.driver.streams import SocketStream
from jumpstarter_jupyter.protocol.codec import decode, encode
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc, router_pb2, router_pb2_grpc

log = logging.getLogger("jumpstarter_jupyter.hosted")

CHILD = Path(__file__).with_name("child.py")
START_TIMEOUT = 120.0  # seconds for upstream's imports and drivers to come up (slow on a loaded host)
STOP_GRACE = 3.0  # seconds upstream's drivers get to close before their process group is killed
RESTART_DELAYS = (0.2, 1.0, 2.0, 5.0)  # a process that keeps dying is restarted less and less often
STABLE = 30.0  # seconds of running after which a death counts as the first again
GOAWAY = router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_GOAWAY)


class HostedUnavailable(ConnectionError):
    """The hosted process is not serving (it died and is being restarted)."""


class HostedDriverError(RuntimeError):
    """An upstream driver's exception, carried by its message (upstream's wire names no type)."""


ERROR_FOR_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: ValueError,
    grpc.StatusCode.UNIMPLEMENTED: NotImplementedError,
    grpc.StatusCode.DEADLINE_EXCEEDED: TimeoutError,
}


class HostedProcess:
    """Starts, supervises and calls the upstream exporter serving ``entries`` (see ``child.py``).

    ``types`` maps each hosted path to its upstream type, for errors that name the driver.
    """

    def __init__(self, python: str, entries: list[dict], types: dict[str, str]):
        self.python, self.entries, self.types = python, entries, types
        self.directory = tempfile.mkdtemp(prefix="jmp-hosted-")  # 0700: the socket is ours alone
        self.socket = os.path.join(self.directory, "upstream.sock")  # upstream's exporter
        self.streams = os.path.join(self.directory, "streams.sock")  # drivers' byte streams (child.relay)
        self.uuids: dict[str, str] = {}  # our path -> the running process's driver UUID
        self.reason: str | None = "it is starting"  # why calls cannot be served; None while serving
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._generation = 0
        self._channel: tuple[int, grpc.aio.Channel] | None = None
        self._stopping = threading.Event()
        self._first: dict | None = None
        self._started = threading.Event()
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self._thread = threading.Thread(target=self._supervise, name="hosted drivers", daemon=True)

    # lifetime
    def start(self) -> dict:
        """Start the process; returns its first answer (``{"nodes": ...}`` or ``{"errors": ...}``
        or ``{"failure": text}``). Only a process that served is supervised further."""
        self._thread.start()
        self._started.wait()
        return self._first or {"failure": "no answer"}

    def stop(self) -> None:
        """End the process and every process its drivers started; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone
                os.killpg(process.pid, signal.SIGINT)  # upstream's drivers close (temporary files...)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                pass
        if process is not None:
            with contextlib.suppress(ProcessLookupError):  # the group is already gone
                os.killpg(process.pid, signal.SIGKILL)  # what its drivers left running
            process.wait()
            for pipe in (process.stdin, process.stdout, process.stderr):
                pipe.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(STOP_GRACE)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _supervise(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                answer = self._spawn()
            except OSError as exc:
                answer = {"failure": f"cannot run {self.python}: {exc.strerror or exc}"}
            if self._first is None:
                self._first = answer
                self._started.set()
                if "nodes" not in answer:
                    return
            if "nodes" in answer:
                self.uuids = {node["path"]: node["uuid"] for node in answer["nodes"] if node["uuid"]}
                self._generation += 1
                self.reason = None
                log.info("hosted drivers serving: %s (pid %d)", ", ".join(self.types), self.process.pid)
            code = self.process.wait() if self.process is not None else None
            if self._stopping.is_set():
                return
            self.reason = f"its upstream exporter process exited with code {code}; it is being restarted"
            log.warning(
                "hosted drivers (%s): upstream exporter process exited with code %s%s; restarting",
                ", ".join(self.types),
                code,
                _tail(self._stderr_tail),
            )
            failures = 0 if time.monotonic() - began > STABLE else failures + 1
            self.restarts += 1
            self._stopping.wait(RESTART_DELAYS[min(failures, len(RESTART_DELAYS) - 1)])

    def _spawn(self) -> dict:
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
        for path in (self.socket, self.streams):
            Path(path).unlink(missing_ok=True)
        self._stderr_tail.clear()
        process = self.process = subprocess.Popen(
            [*prefix, self.python, "-u", str(CHILD)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        threading.Thread(
            target=self._relay_logs, args=(process.stderr,), name="hosted logs", daemon=True
        ).start()
        process.stdin.write(
            json.dumps({"socket": self.socket, "streams": self.streams, "entries": self.entries}).encode()
            + b"\n"
        )
        process.stdin.flush()  # stays open: its end tells the child we are gone
        watchdog = threading.Timer(START_TIMEOUT, process.kill)
        watchdog.start()
        try:
            line = process.stdout.readline()
        finally:
            watchdog.cancel()
        if not line:
            code = process.wait()
            return {
                "failure": f"{self.python} exited with code {code} before serving{_tail(self._stderr_tail)}"
            }
        return json.loads(line)

    def _relay_logs(self, stderr) -> None:
        """The child's log records into ours (and so into ``LogStream``), under their logger names."""
        for raw in stderr:
            text = raw.decode(errors="replace").rstrip()
            try:
                record = json.loads(text)
                logging.getLogger(record["name"]).log(record["level"], "%s", record["message"])
            except (ValueError, KeyError, TypeError):
                if text:
                    self._stderr_tail.append(text)
                    log.warning("hosted: %s", text)

    # calls
    def target(self, path: str) -> str:
        """The running process's UUID for our ``path``, or ``HostedUnavailable`` naming the driver."""
        uuid = self.uuids.get(path) if self.reason is None else None
        if uuid is None:
            raise HostedUnavailable(
                f"hosted driver {path} ({self.types.get(path, 'upstream driver')}) is not "
                f"running: {self.reason or 'its process no longer serves it'}"
            )
        return uuid

    def channel(self) -> grpc.aio.Channel:
        """The channel to the running process, on the calling event loop (one per process run)."""
        if self._channel is None or self._channel[0] != self._generation:
            if self._channel is not None:
                asyncio.ensure_future(self._channel[1].close())
            self._channel = (self._generation, grpc.aio.insecure_channel(f"unix:{self.socket}"))
        return self._channel[1]

    def error(self, err: grpc.aio.AioRpcError, path: str) -> Exception:
        """An upstream driver's failure as the exception our exporter reports (same status code)."""
        if self.reason is not None or err.code() == grpc.StatusCode.UNAVAILABLE:
            why = self.reason or f"its upstream exporter process went away ({err.details()})"
            return HostedUnavailable(f"hosted driver {path} ({self.types.get(path)}) is not running: {why}")
        return ERROR_FOR_STATUS.get(err.code(), HostedDriverError)(err.details() or err.code().name)

    async def call(self, path: str, method: str, args: tuple) -> Any:
        request = pb.DriverCallRequest(uuid=self.target(path), method=method, args=[encode(a) for a in args])
        try:
            response = await jumpstarter_pb2_grpc.ExporterServiceStub(self.channel()).DriverCall(request)
        except grpc.aio.AioRpcError as err:
            raise self.error(err, path) from None
        return decode(response.result)

    async def items(self, path: str, method: str, args: tuple) -> AsyncIterator[Any]:
        request = pb.StreamingDriverCallRequest(
            uuid=self.target(path), method=method, args=[encode(a) for a in args]
        )
        call = jumpstarter_pb2_grpc.ExporterServiceStub(self.channel()).StreamingDriverCall(request)
        try:
            async for response in call:
                yield decode(response.result)
        except grpc.aio.AioRpcError as err:
            raise self.error(err, path) from None
        finally:
            call.cancel()

    async def open_byte_stream(self, path: str, method: str) -> SocketStream:
        """The byte stream of the hosted driver's ``method``: the driver's own socket when the
        process hands it over (network drivers), else relayed by the process (child.relay)."""
        uuid = self.target(path)
        relay = socket.socket(socket.AF_UNIX)
        try:
            relay.settimeout(START_TIMEOUT)
            answer, leftover, fds = await asyncio.to_thread(
                _ask, relay, self.streams, {"uuid": uuid, "method": method}
            )
        except OSError as exc:
            relay.close()
            raise HostedUnavailable(
                f"hosted driver {path} ({self.types.get(path)}) is not running: {exc}"
            ) from None
        if "error" in answer:
            relay.close()
            raise HostedDriverError(answer["error"])
        relay.setblocking(False)
        if not fds:
            reader, writer = await asyncio.open_unix_connection(sock=relay, limit=SocketStream.CHUNK)
            if leftover:  # the driver's first bytes came with the answer
                reader.feed_data(leftover)
            return SocketStream(reader, writer)
        driver_socket = socket.socket(fileno=fds[0])
        return HandedStream(
            *await asyncio.open_connection(sock=driver_socket, limit=SocketStream.CHUNK), relay
        )

    def open_stream(self, path: str, request: dict) -> StreamCall:
        """RouterService.Stream to the hosted driver ``request`` names (its UUID replaced)."""
        metadata = (("request", json.dumps({**request, "uuid": self.target(path)})),)
        return StreamCall(router_pb2_grpc.RouterServiceStub(self.channel()), metadata)


def _ask(relay: socket.socket, path: str, request: dict) -> tuple[dict, bytes, list[int]]:
    """Ask the process's stream socket for a driver's stream: (its answer, bytes after the answer
    line) and the file descriptor it handed over, if it did."""
    relay.connect(path)
    relay.sendall(json.dumps(request).encode() + b"\n")
    data, fds, _, _ = socket.recv_fds(relay, 1 << 16, 1)
    while b"\n" not in data:
        more = relay.recv(1 << 16)
        if not more:
            return {"error": "the hosted process closed the stream"}, b"", fds
        data += more
    line, _, leftover = data.partition(b"\n")
    return json.loads(line), leftover, fds


class HandedStream(SocketStream):
    """A driver's own socket, handed over by the hosted process; closing it also closes the
    connection it came on, which tells the process to let go of it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, relay: socket.socket):
        super().__init__(reader, writer)
        self.relay = relay

    def close(self) -> None:
        super().close()
        self.relay.close()


class StreamCall:
    """A byte stream into the hosted process, as a ByteStream: ``send``/``send_eof`` queue
    frames, ``receive`` returns payloads (``b""`` at GOAWAY or end), ``close`` cancels."""

    def __init__(self, stub: router_pb2_grpc.RouterServiceStub, metadata: tuple):
        self._outgoing: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
        self._loop = asyncio.get_running_loop()
        self.call = stub.Stream(self._frames(), metadata=metadata)

    async def _frames(self) -> AsyncIterator[router_pb2.StreamRequest]:
        while (data := await self._outgoing.get()) is not None:
            yield router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_DATA, payload=data)
        yield GOAWAY

    async def send(self, data: bytes) -> None:
        await self._outgoing.put(data)

    async def send_eof(self) -> None:
        await self._outgoing.put(None)

    async def receive(self) -> bytes:
        while True:
            response = await self.call.read()
            if response is grpc.aio.EOF or response.frame_type == router_pb2.FRAME_TYPE_GOAWAY:
                return b""
            if response.payload:
                return response.payload

    def close(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self.call.cancel)
        except RuntimeError:  # the loop is gone, and the call with it
            pass


def _tail(lines: collections.deque[str]) -> str:
    return (": " + " | ".join(list(lines)[-5:])) if lines else ""
