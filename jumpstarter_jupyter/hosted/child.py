"""Serve upstream Jumpstarter drivers for a jumpstarter-jupyter exporter.

This file runs in *upstream's* Python (an environment with upstream ``jumpstarter`` and its
driver packages), started by :mod:`jumpstarter_jupyter.hosted.process`; it never imports
jumpstarter_jupyter (upstream's generated stubs and ours register the same protobuf names,
so the two cannot share an interpreter). The exchange with the exporter:

* stdin, first line: ``{"socket": PATH, "entries": [ENTRY, ...]}`` where an ENTRY is
  ``{"path", "yaml_path", "type", "config", "children": {name: ENTRY}, "description",
  "methods_description"}``. stdin then stays open: its end (the exporter is gone, however it
  died) ends this process and every process its drivers started (they share its process group).
* stdout, one line: ``{"errors": [{"yaml_path", "message"}]}`` (configuration mistakes: nothing
  is served) or ``{"nodes": [NODE, ...]}`` once upstream's exporter serves ``socket``. A NODE is
  ``{"path", "uuid", "type", "client", "labels", "description", "methods_description",
  "methods", "failed"}``; ``failed`` is the error of a driver whose device could not be opened.
* stderr: one JSON object per log record (``name``, ``level``, ``message``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import inspect
import json
import logging
import os
import signal
import sys
import threading
import typing
from typing import Any

MARKERS = {
    "marker_drivercall": "call",
    "marker_streamingdrivercall": "streaming",
    "marker_streamcall": "stream",
}
MAGIC = "07c9b9cc"
BASE_FIELDS = {"children", "description", "methods_description"}  # set from the entry, not from config


class ConfigMistake(Exception):
    def __init__(self, yaml_path: str, message: str):
        super().__init__(message)
        self.yaml_path = yaml_path


class JsonLines(logging.Handler):
    """Log records to stderr as JSON lines the exporter re-logs under the same logger names."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.dumps({"name": record.name, "level": record.levelno, "message": record.getMessage()})
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


def end_everything(*_: Any) -> None:
    """Kill whatever this process's drivers started (some in sessions of their own, as upstream's
    shell driver does), then this process's group."""
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    os.killpg(os.getpgid(0), signal.SIGKILL)


def descendants(root: int) -> list[int]:
    """Every live process below ``root``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(") ", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def watch_stdin() -> None:
    while sys.stdin.buffer.read(65536):
        pass
    end_everything()


def import_class(name: str, yaml_path: str) -> type:
    module_name, _, attr = name.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigMistake(
            f"{yaml_path}.type", f"cannot import driver type {name!r} in {sys.executable}: {exc}"
        ) from None


def check_config(cls: type, config: dict, yaml_path: str) -> None:
    """Refuse unknown keys, missing keys and values of the wrong type, as the field types say."""
    if not dataclasses.is_dataclass(cls):
        return
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in BASE_FIELDS}
    for key in config:
        if key not in fields:
            raise ConfigMistake(
                f"{yaml_path}.config.{key}",
                f"{cls.__name__} has no config field {key!r}; fields: {', '.join(fields) or 'none'}",
            )
    for name, f in fields.items():
        if (
            name not in config
            and f.default is dataclasses.MISSING
            and f.default_factory is dataclasses.MISSING
        ):
            raise ConfigMistake(f"{yaml_path}.config", f"{cls.__name__} needs config field {name!r}")
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # annotations that do not resolve here: upstream checks them when it builds
        return
    from pydantic import TypeAdapter, ValidationError

    for key, value in config.items():
        try:
            TypeAdapter(hints.get(key, Any)).validate_python(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "".join(f"[{part}]" for part in first.get("loc", ()))
            raise ConfigMistake(
                f"{yaml_path}.config.{key}", f"{first['msg']}{f' at {where}' if where else ''}, got {value!r}"
            ) from None
        except Exception:  # a type pydantic cannot check (a device handle): upstream checks it
            continue


def build(entry: dict, failed: list) -> Any:
    """The driver for ``entry`` (None when its device cannot be opened: recorded in ``failed``)."""
    cls = import_class(entry["type"], entry["yaml_path"])
    config = entry.get("config") or {}
    check_config(cls, config, entry["yaml_path"])
    children = {}
    for name, child in (entry.get("children") or {}).items():
        built = build(child, failed)
        if built is not None:
            children[name] = built
    try:
        return cls(
            children=children,
            description=entry.get("description"),
            methods_description=entry.get("methods_description") or {},
            **config,
        )
    except TypeError as exc:
        raise ConfigMistake(f"{entry['yaml_path']}.config", f"{cls.__name__}: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ == "ValidationError" and hasattr(exc, "errors"):  # a pydantic driver
            first = exc.errors()[0]
            loc = ".".join(str(part) for part in first.get("loc", ()))
            raise ConfigMistake(
                f"{entry['yaml_path']}.config{'.' + loc if loc else ''}", first["msg"]
            ) from None
        for child in children.values():
            child.close()
        failed.append((entry["path"], cls, f"{type(exc).__name__}: {exc}"))
        return None


def describe_methods(cls: type) -> list[dict]:
    methods = []
    for name in dir(cls):
        func = getattr(cls, name, None)
        kind = next((kind for marker, kind in MARKERS.items() if getattr(func, marker, None) == MAGIC), None)
        if kind is None:
            continue
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError):
            signature = inspect.Signature()
        params = []
        for param in list(signature.parameters.values())[1:]:  # without self
            about: dict[str, Any] = {"name": param.name, "kind": param.kind.name}
            if param.annotation is not param.empty:
                about["type"] = (
                    param.annotation
                    if isinstance(param.annotation, str)
                    else getattr(param.annotation, "__name__", str(param.annotation))
                )
            if param.default is not param.empty:
                default = param.default
                about["default"] = (
                    default if isinstance(default, (int, float, str, bool, type(None))) else repr(default)
                )
            params.append(about)
        described = {"name": name, "kind": kind, "params": params, "doc": inspect.getdoc(func) or ""}
        if signature.return_annotation is not signature.empty:
            returns = signature.return_annotation
            described["returns"] = (
                returns if isinstance(returns, str) else getattr(returns, "__name__", str(returns))
            )
        methods.append(described)
    return methods


def describe(path: str, driver: Any, name: str | None) -> list[dict]:
    report = driver.report(name=name)
    out = [
        {
            "path": path,
            "uuid": str(driver.uuid),
            "type": f"{type(driver).__module__}.{type(driver).__qualname__}",
            "client": type(driver).client(),
            "labels": dict(report.labels),
            "failed": None,
            "description": report.description if report.HasField("description") else None,
            "methods_description": dict(report.methods_description),
            "methods": describe_methods(type(driver)),
        }
    ]
    for child_name, child in driver.children.items():
        out += describe(f"{path}.{child_name}", child, child_name)
    return out


async def relay(session: Any, conn: Any) -> None:
    """One byte stream of a driver, on a connection of the exporter's stream socket: a JSON line
    ``{"uuid", "method"}`` names it, the answer line says ``{"ok": true}`` or ``{"error": ...}``,
    then bytes flow both ways as upstream's exporter forwards them (EOF passed on). A socket
    instead of a second gRPC hop: the exporter already frames the client's stream."""
    from uuid import UUID

    import anyio
    import anyio.abc
    import anyio.to_thread
    from anyio.streams.buffered import BufferedByteReceiveStream
    from jumpstarter.streams.common import forward_stream

    async with conn:
        try:
            request = json.loads(await BufferedByteReceiveStream(conn).receive_until(b"\n", 65536))
            method = getattr(session[UUID(request["uuid"])], request["method"])
            if getattr(method, "marker_streamcall", None) != MAGIC:
                raise AttributeError(f"method {request['method']} missing marker marker_streamcall")
            opened = method()
            stream = await opened.__aenter__()
        except Exception as exc:
            await conn.send(json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode() + b"\n")
            return
        try:
            handed = handover(stream)
            if handed is not None:  # the exporter reads and writes the driver's socket itself
                import socket

                raw = conn.extra(anyio.abc.SocketAttribute.raw_socket)
                await anyio.to_thread.run_sync(
                    socket.send_fds, raw, [b'{"ok": true, "fd": true}\n'], [handed]
                )
                with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError):
                    await conn.receive()  # until the exporter is done with it
                return
            await conn.send(b'{"ok": true}\n')
            async with forward_stream(conn, stream):
                pass  # until both directions have ended
        finally:
            await opened.__aexit__(None, None, None)


def handover(stream: Any) -> int | None:
    """The file descriptor of a driver's stream that is a plain connected stream socket with
    nothing read from it yet (TcpNetwork, UnixNetwork), so the exporter can use the socket
    without this process relaying every byte; None for anything else (relayed)."""
    import socket

    import anyio.abc

    try:
        raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    except Exception:
        return None
    if raw.type != socket.SOCK_STREAM:
        return None  # datagrams keep their boundaries only through the relay
    # anyio's asyncio streams: a TCP SocketStream reads ahead into its protocol's queue; a
    # UNIXSocketStream reads only when asked. Anything else is relayed.
    transport, protocol = getattr(stream, "_transport", None), getattr(stream, "_protocol", None)
    if transport is not None and protocol is not None:
        transport.pause_reading()
        if protocol.read_queue or protocol.is_at_eof:
            transport.resume_reading()  # bytes already read here: relay them with the rest
            return None
    elif type(stream).__name__ != "UNIXSocketStream":
        return None
    return raw.fileno()


def main() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})  # the exporter blocks them
    signal.signal(signal.SIGTERM, end_everything)  # the exporter's death signal (setpriv --pdeathsig TERM)
    spec = json.loads(sys.stdin.readline())
    threading.Thread(target=watch_stdin, daemon=True).start()
    logging.basicConfig(level=logging.INFO, handlers=[JsonLines()])

    nodes: list = []
    failed: list = []
    drivers = {}
    try:
        for entry in spec["entries"]:
            built = build(entry, failed)
            if built is not None:
                drivers[entry["path"]] = built
    except ConfigMistake as mistake:
        print(json.dumps({"errors": [{"yaml_path": mistake.yaml_path, "message": str(mistake)}]}), flush=True)
        return
    for path, driver in drivers.items():
        nodes += describe(path, driver, path.rpartition(".")[2])
    for path, cls, error in failed:
        nodes.append(
            {
                "path": path,
                "uuid": None,
                "type": f"{cls.__module__}.{cls.__qualname__}",
                "client": cls.client(),
                "labels": {},
                "description": None,
                "methods_description": {},
                "methods": describe_methods(cls),
                "failed": error,
            }
        )

    import anyio
    from jumpstarter.common import ExporterStatus
    from jumpstarter.exporter import Session
    from jumpstarter_driver_composite.driver import Composite

    async def serve() -> None:
        root = Composite(children={str(i): driver for i, driver in enumerate(drivers.values())})
        with Session(root_device=root) as session:
            async with session.serve_port_async(f"unix://{spec['socket']}"):
                session.update_status(ExporterStatus.LEASE_READY)
                listener = await anyio.create_unix_listener(spec["streams"])
                async with anyio.create_task_group() as tasks:
                    tasks.start_soon(listener.serve, lambda conn: relay(session, conn))
                    print(json.dumps({"nodes": nodes}), flush=True)

    try:
        anyio.run(serve)  # SIGINT (the exporter stopping) cancels it: the drivers close
    except KeyboardInterrupt:
        pass
    sys.stdout.flush()
    os._exit(0)  # now: the stdin watcher thread must not hold up interpreter shutdown


if __name__ == "__main__":
    main()
