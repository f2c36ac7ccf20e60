"""TLS channels to an upstream Jumpstarter controller and its router, as upstream makes them.

Upstream's controller (and its router) serve TLS only. ``tls.ca`` holds base64 PEM roots;
``tls.insecure`` fetches the server's certificate chain unverified and trusts it (as upstream's
``JMP_GRPC_INSECURE`` does); neither means the system's roots. ``grpcOptions`` override upstream's
channel defaults. Every controller call carries the token as ``authorization: Bearer`` and the
caller's kind, namespace and name (``jumpstarter-kind``, ``-namespace``, ``-name``).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from dataclasses import dataclass, field

import grpc

# upstream's defaults (jumpstarter/common/grpc.py); a config's grpcOptions override them
DEFAULT_OPTIONS = {
    "grpc.lb_policy_name": "round_robin",
    "grpc.keepalive_time_ms": 20000,
    "grpc.keepalive_timeout_ms": 180000,
    "grpc.http2.max_pings_without_data": 0,
    "grpc.keepalive_permit_without_calls": 1,
}
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
