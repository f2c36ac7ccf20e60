"""TLS channels to an upstream Jumpstarter controller and its router, as upstream makes them.

Upstream's controller (and its router) serve TLS only. ``tls.ca`` holds base64 PEM roots;
``tls.insecure`` fetches the server's certificate chain unverified and trusts it (as upstream's
``JMP_GRPC_INSECURE`` does); neither means the system's roots. ``grpcOptions`` override upstream's
channel defaults. Every controller call carries the token as ``authorization: Bearer`` and the
caller's kind, namespace and name (``jumpstarter-kind``, ``-namespace``, ``-name``).

A router stream carries one plaintext HTTP/2 connection as DATA frames; :func:`carry` joins it
to a local socket, on the client's side (its gRPC channel) and the exporter's (its server) alike.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field
from typing import Any

import grpc

from jumpstarter_jupyter.aio_loop import first_to_end
from jumpstarter_jupyter.protocol.v1 import router_pb2
from jumpstarter_jupyter.yamlfile import YamlReader, mapping

# upstream's defaults (jumpstarter/common/grpc.py); a config's grpcOptions override them
DEFAULT_OPTIONS = {
    "grpc.lb_policy_name": "round_robin",
    "grpc.keepalive_time_ms": 20000,
    "grpc.keepalive_timeout_ms": 180000,
    "grpc.http2.max_pings_without_data": 0,
    "grpc.keepalive_permit_without_calls": 1,
}
CHUNK = 64 * 1024  # bytes read from the local socket per DATA frame
FETCH_TIMEOUT = 5.0  # seconds to fetch an unverified certificate chain (tls.insecure)


@dataclass(frozen=True)
class ControllerSettings:
    """Where the controller is and who we are to it: a config's ``endpoint``, ``token``, ``tls``,
    ``grpcOptions`` and ``metadata`` (namespace and name of the Exporter or Client object)."""

    endpoint: str
    token: str
    namespace: str
    name: str
    ca: str = ""  # base64 PEM roots
    insecure: bool = False
    grpc_options: dict[str, str | int] = field(default_factory=dict)

    @property
    def options(self) -> list[tuple[str, str | int]]:
        return list({**DEFAULT_OPTIONS, **self.grpc_options}.items())


def read_connection(reader: YamlReader, data: dict) -> tuple[str, bool, dict[str, str | int]]:
    """A client or exporter config's ``tls`` (``ca``, ``insecure``) and ``grpcOptions``, checked:
    ``(ca, insecure, grpc_options)``; a bad value names the YAML path and what was expected."""
    tls = mapping(reader, data.get("tls"), "tls", {"ca", "insecure"})
    ca = tls.get("ca") or ""
    if not isinstance(ca, str):
        raise reader.error("tls.ca", f"expected base64 PEM certificates, got {ca!r}")
    try:
        if ca and b"BEGIN CERTIFICATE" not in base64.b64decode(ca, validate=True):
            raise ValueError("no PEM certificate in it")
    except ValueError as exc:
        raise reader.error("tls.ca", f"expected base64 PEM certificates ({exc})") from None
    insecure = tls.get("insecure", False)
    if not isinstance(insecure, bool):
        raise reader.error("tls.insecure", f"expected true or false, got {insecure!r}")
    options = data.get("grpcOptions") or {}
    if not isinstance(options, dict):
        raise reader.error("grpcOptions", f"expected a mapping of gRPC channel options, got {options!r}")
    for key, value in options.items():
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise reader.error(f"grpcOptions.{key}", f"expected text or an integer, got {value!r}")
    return ca, insecure, dict(options)


def why(exc: BaseException) -> str:
    """A failure in words: a gRPC error's code and details, else the exception."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return f"{exc.code().name}: {exc.details()}"
    return str(exc) or type(exc).__name__


async def server_credentials(target: str, settings: ControllerSettings) -> grpc.ChannelCredentials:
    """The channel credentials for ``target`` (the controller or a router endpoint)."""
    if settings.insecure:
        return grpc.ssl_channel_credentials(root_certificates=await _unverified_chain(target))
    if settings.ca:
        return grpc.ssl_channel_credentials(root_certificates=base64.b64decode(settings.ca))
    return grpc.ssl_channel_credentials()


async def _unverified_chain(target: str) -> bytes:
    """The PEM chain ``target`` presents, unverified (``tls.insecure``)."""
    host, _, port = target.rpartition(":")
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    async with asyncio.timeout(FETCH_TIMEOUT):
        _, writer = await asyncio.open_connection(host.strip("[]"), int(port or 443), ssl=context)
    try:
        tls = writer.get_extra_info("ssl_object")
        # the whole chain (private in Python 3.11, as upstream uses it); else the leaf alone
        chain = getattr(getattr(tls, "_sslobj", None), "get_unverified_chain", lambda: None)()
        if chain:
            return "".join(cert.public_bytes() for cert in chain).encode()
        return ssl.DER_cert_to_PEM_cert(tls.getpeercert(binary_form=True)).encode()
    finally:
        writer.close()


async def controller_channel(settings: ControllerSettings, kind: str) -> grpc.aio.Channel:
    """A channel to the controller whose every call says who we are (``kind``: Exporter or Client)."""

    def identity(context, callback):
        callback(
            (
                ("jumpstarter-kind", kind),
                ("jumpstarter-namespace", settings.namespace),
                ("jumpstarter-name", settings.name),
            ),
            None,
        )

    credentials = grpc.composite_channel_credentials(
        await server_credentials(settings.endpoint, settings),
        grpc.metadata_call_credentials(identity),
        grpc.access_token_call_credentials(settings.token),
    )
    return grpc.aio.secure_channel(settings.endpoint, credentials, options=settings.options)


async def router_channel(endpoint: str, token: str, settings: ControllerSettings) -> grpc.aio.Channel:
    """A channel to a router, whose streams carry ``authorization: Bearer`` the router token."""
    credentials = grpc.composite_channel_credentials(
        await server_credentials(endpoint, settings), grpc.access_token_call_credentials(token)
    )
    return grpc.aio.secure_channel(endpoint, credentials, options=settings.options)


async def carry(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, call: Any) -> None:
    """Join a local connection (``reader``/``writer``) and a router stream ``call`` until either
    ends: the local bytes go out as DATA frames, the other side's DATA frames come in. The
    caller closes both afterwards."""
    await first_to_end(_to_router(reader, call), _from_router(call, writer))


async def _to_router(reader: asyncio.StreamReader, call: Any) -> None:
    """The local bytes as DATA frames; at their end, GOAWAY and the end of our writes."""
    try:
        while data := await reader.read(CHUNK):
            await call.write(router_pb2.StreamRequest(payload=data))
        await call.write(router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_GOAWAY))
        await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
        if not call.done() or await call.code() != grpc.StatusCode.OK:
            raise
        # the router ended the stream cleanly (the other side hung up) while we still wrote


async def _from_router(call: Any, writer: asyncio.StreamWriter) -> None:
    """The other side's DATA frames to the local connection, until GOAWAY, RST_STREAM or the end."""
    async for frame in call:
        if frame.frame_type == router_pb2.FRAME_TYPE_DATA:
            writer.write(frame.payload)
            await writer.drain()
        elif frame.frame_type == router_pb2.FRAME_TYPE_GOAWAY:
            return
        elif frame.frame_type == router_pb2.FRAME_TYPE_RST_STREAM:
            raise ConnectionResetError("the other side reset the router stream")
        # PING: nothing to forward
