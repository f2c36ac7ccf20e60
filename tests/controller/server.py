"""A controller and router for the tests, speaking upstream Jumpstarter 0.9.0's protocol.

Upstream's controller needs a Kubernetes API server, which cannot run here; this one keeps its
objects in memory and behaves like the real one where /work/shared/research/controller-facts.md
(read from upstream's Go sources) says how: TLS only; every call authenticated by
``authorization: Bearer TOKEN`` plus ``jumpstarter-kind/-namespace/-name`` metadata; selector
labels live on the Exporter objects the test creates (``add_exporter``), not in ``Register``;
a selector no exporter matches makes the lease ``Unsatisfiable`` (``NoAccess``), one whose
exporters are busy or offline ``Pending``; ``Dial`` mints one HS256 JWT that the client gets and
the exporter is sent on its ``Listen`` stream; the router pairs the two callers whose tokens
have the same ``sub`` and copies their frames verbatim both ways.

It runs on the process's grpc.aio event loop (our exporter's, in a daemon thread). ``stop()`` ends every stream and call
(the objects stay, as they would in Kubernetes) and ``start()`` serves again on the same ports;
``cut_router_streams(lease)`` ends the router streams of one lease.
"""

from __future__ import annotations

import asyncio
import datetime
import inspect
import ipaddress
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from google.protobuf import empty_pb2

from jumpstarter_jupyter.aio_loop import event_loop
from jumpstarter_jupyter.protocol.client.v1 import client_pb2, client_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import (
    common_pb2,
    jumpstarter_pb2,
    jumpstarter_pb2_grpc,
    kubernetes_pb2,
    router_pb2,
    router_pb2_grpc,
)
from jumpstarter_jupyter.selector import SelectorError, parse

ISSUER = "https://jumpstarter.dev/stream"
AUDIENCE = "https://jumpstarter.dev/router"
RECONCILE_SECONDS = 0.2  # the real controller requeues every second
DIAL_NOT_READY_SECONDS = 5.0  # the real controller waits 30 s for an exporter to become LEASE_READY
CUT = object()  # put in a router stream's inbox: the stream fails
ELIGIBLE = (common_pb2.EXPORTER_STATUS_UNSPECIFIED, common_pb2.EXPORTER_STATUS_AVAILABLE)
DIALABLE = (
    common_pb2.EXPORTER_STATUS_UNSPECIFIED,
    common_pb2.EXPORTER_STATUS_LEASE_READY,
    common_pb2.EXPORTER_STATUS_BEFORE_LEASE_HOOK,
    common_pb2.EXPORTER_STATUS_AFTER_LEASE_HOOK,
)


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost: (cert.pem, key.pem) in ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jumpstarter test controller")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@dataclass
class Identity:
    kind: str  # "Client" or "Exporter"
    namespace: str
    name: str
    token: str


@dataclass
class Exporter:
    identity: Identity
    labels: dict[str, str]
    devices: list = field(default_factory=list)  # Register's reports; empty: not registered
    status: int = common_pb2.EXPORTER_STATUS_UNSPECIFIED
    status_message: str = ""
    status_streams: int = 0  # open Status streams: the exporter is online while one is
    lease: str | None = None  # the lease it serves
    listen_queue: asyncio.Queue | None = None  # the open Listen stream's
    register_count: int = 0

    @property
    def online(self) -> bool:
        return self.status_streams > 0 and self.status != common_pb2.EXPORTER_STATUS_OFFLINE


@dataclass
class Lease:
    namespace: str
    id: str
    client: str
    selector: str
    duration: datetime.timedelta
    conditions: dict[str, kubernetes_pb2.Condition] = field(default_factory=dict)
    exporter: str | None = None
    begin: datetime.datetime | None = None
    end: datetime.datetime | None = None

    @property
    def name(self) -> str:
        return f"namespaces/{self.namespace}/leases/{self.id}"

    def condition(self, type_: str, status: bool, reason: str, message: str = "") -> None:
        seconds = int(datetime.datetime.now(datetime.UTC).timestamp())
        self.conditions[type_] = kubernetes_pb2.Condition(
            type=type_,
            status="True" if status else "False",
            reason=reason,
            message=message,
            lastTransitionTime=kubernetes_pb2.Time(seconds=seconds, nanos=0),
        )

    def is_true(self, type_: str) -> bool:
        return type_ in self.conditions and self.conditions[type_].status == "True"

    @property
    def ended(self) -> bool:
        return self.end is not None


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class State:
    """The controller's objects (Kubernetes' in the real one), touched only on the server's loop."""

    def __init__(self, secret: str, router_endpoint: str):
        self.secret = secret
        self.router_endpoint = router_endpoint
        self.identities: dict[str, Identity] = {}  # by token
        self.exporters: dict[tuple[str, str], Exporter] = {}
        self.leases: dict[str, Lease] = {}  # by full name
        self.router_subjects: dict[str, str] = {}  # JWT sub -> lease name
        self.changed = asyncio.Condition()
        self.dials = 0

    async def notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def wait_change(self, timeout: float) -> None:
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait(), timeout)
            except TimeoutError:
                pass

    def authenticate(self, context: grpc.aio.ServicerContext, kind: str) -> Identity:
        metadata = dict(context.invocation_metadata() or ())
        header = metadata.get("authorization", "")
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        identity = self.identities.get(token or "")
        if identity is None:
            raise PermissionError("unknown or missing bearer token")
        for key, expected in (
            ("jumpstarter-kind", kind),
            ("jumpstarter-namespace", identity.namespace),
            ("jumpstarter-name", identity.name),
        ):
            if metadata.get(key) != expected:
                raise PermissionError(f"metadata {key}={metadata.get(key)!r}, expected {expected!r}")
        if identity.kind != kind:
            raise PermissionError(f"the token is a {identity.kind}'s, the call a {kind}'s")
        return identity

    def exporter_of(self, identity: Identity) -> Exporter:
        return self.exporters[(identity.namespace, identity.name)]

    def release(self, lease: Lease, reason: str) -> None:
        """End a lease: Ready=False with ``reason`` (Released/Expired), its exporter freed."""
        if lease.ended:
            return
        lease.condition("Ready", False, reason)
        lease.end = now()
        if lease.exporter:
            exporter = self.exporters.get((lease.namespace, lease.exporter))
            if exporter and exporter.lease == lease.name:
                exporter.lease = None

    def reconcile(self) -> bool:
        """One pass of the lease controller; True when something changed."""
        changed = False
        for lease in self.leases.values():
            if lease.ended:
                continue
            if lease.begin and now() >= lease.begin + lease.duration:
                self.release(lease, "Expired")
                changed = True
                continue
            if lease.exporter:
                continue
            changed |= self.assign(lease)
        return changed

    def assign(self, lease: Lease) -> bool:
        try:
            selector = parse(lease.selector)
        except SelectorError as error:
            lease.condition("Invalid", True, "InvalidSelector", str(error))
            lease.end = now()
            return True
        matching = [
            e for (ns, _), e in self.exporters.items() if ns == lease.namespace and selector.matches(e.labels)
        ]
        if not matching:
            lease.condition(
                "Unsatisfiable", True, "NoAccess", f"no exporter matches selector {lease.selector!r}"
            )
            lease.end = now()
            return True
        online = [e for e in matching if e.devices and e.online]
        free = [e for e in online if e.lease is None]
        ready = [e for e in free if e.status in ELIGIBLE]
        if not ready:
            reason = "Offline" if not online else "NotAvailable" if not free else "NotReady"
            previous = lease.conditions.get("Pending")
            lease.condition(
                "Pending", True, reason, f"{len(matching)} exporter(s) match, none is free ({reason})"
            )
            return previous is None or previous.reason != reason
        exporter = ready[0]
        exporter.lease = lease.name
        lease.exporter = exporter.identity.name
        lease.begin = now()
        lease.condition("Ready", True, "Ready")
        return True

    def lease_message(self, lease: Lease) -> client_pb2.Lease:
        message = client_pb2.Lease(
            name=lease.name,
            selector=lease.selector,
            client=f"namespaces/{lease.namespace}/clients/{lease.client}",
            conditions=list(lease.conditions.values()),
        )
        message.duration.FromTimedelta(lease.duration)
        message.effective_duration.FromTimedelta(lease.duration)
        if lease.exporter:
            message.exporter = f"namespaces/{lease.namespace}/exporters/{lease.exporter}"
        if lease.begin:
            message.effective_begin_time.FromDatetime(lease.begin)
            message.effective_end_time.FromDatetime(lease.end or lease.begin + lease.duration)
            if not lease.end:
                message.ClearField("effective_end_time")
        if lease.end:
            message.effective_end_time.FromDatetime(lease.end)
        return message

    def mint(self, lease: Lease) -> str:
        subject = str(uuid.uuid4())
        self.router_subjects[subject] = lease.name
        claims = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now(),
            "nbf": now(),
            "exp": now() + datetime.timedelta(minutes=30),
        }
        return jwt.encode(claims, self.secret, algorithm="HS256")


def guarded(kind: str):
    """Authenticate the call as ``kind``; PermissionError → UNAUTHENTICATED, KeyError → NOT_FOUND."""

    def decorate(method):
        async def unary(self, request, context):
            try:
                identity = self.state.authenticate(context, kind)
                return await method(self, request, context, identity)
            except PermissionError as error:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))

        async def streaming(self, request, context):
            try:
                identity = self.state.authenticate(context, kind)
            except PermissionError as error:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, str(error))
            async for item in method(self, request, context, identity):
                yield item

        wrapper = streaming if inspect.isasyncgenfunction(method) else unary
        wrapper.__name__ = method.__name__
        return wrapper

    return decorate


class ControllerService(jumpstarter_pb2_grpc.ControllerServiceServicer):
    def __init__(self, state: State):
        self.state = state

    @guarded("Exporter")
    async def Register(self, request, context, identity):
        exporter = self.state.exporter_of(identity)
        exporter.labels.update({k: v for k, v in request.labels.items() if k.startswith("jumpstarter.dev/")})
        exporter.devices = list(request.reports)
        exporter.register_count += 1
        await self.state.notify()
        return jumpstarter_pb2.RegisterResponse(uuid=str(uuid.uuid5(uuid.NAMESPACE_URL, identity.name)))

    @guarded("Exporter")
    async def Unregister(self, request, context, identity):
        exporter = self.state.exporter_of(identity)
        exporter.devices = []
        exporter.status = common_pb2.EXPORTER_STATUS_OFFLINE
        await self.state.notify()
        return jumpstarter_pb2.UnregisterResponse()

    @guarded("Exporter")
    async def ReportStatus(self, request, context, identity):
        exporter = self.state.exporter_of(identity)
        exporter.status = request.status
        exporter.status_message = request.message
        if request.release_lease and exporter.lease:
            self.state.release(self.state.leases[exporter.lease], "Released")
        await self.state.notify()
        return jumpstarter_pb2.ReportStatusResponse()

    @guarded("Exporter")
    async def ReleaseLease(self, request, context, identity):
        exporter = self.state.exporter_of(identity)
        lease = self.state.leases.get(exporter.lease or "")
        if lease is not None:
            self.state.release(lease, "Released")
            await self.state.notify()
        return jumpstarter_pb2.ReleaseLeaseResponse()

    @guarded("Exporter")
    async def Status(self, request, context, identity):
        exporter = self.state.exporter_of(identity)
        exporter.status_streams += 1
        await self.state.notify()
        try:
            sent = None
            while True:
                lease = self.state.leases.get(exporter.lease or "")
                current = jumpstarter_pb2.StatusResponse(leased=lease is not None)
                if lease is not None:
                    # bare names, as the real controller sends (the Kubernetes objects' names)
                    current.lease_name, current.client_name = lease.id, lease.client
                if current != sent:
                    yield current
                    sent = current
                await self.state.wait_change(10)
        finally:
            exporter.status_streams -= 1
            await self.state.notify()

    @guarded("Exporter")
    async def Listen(self, request, context, identity):
        exporter = self.state.exporter_of(identity)
        lease_name = f"namespaces/{identity.namespace}/leases/{request.lease_name}"
        if exporter.lease != lease_name:
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "permission denied: not this exporter's lease"
            )
        queue: asyncio.Queue = asyncio.Queue()
        exporter.listen_queue = queue  # a new Listen supersedes the old one
        await self.state.notify()
        try:
            while exporter.listen_queue is queue and exporter.lease == lease_name:
                try:
                    yield await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    continue
        finally:
            if exporter.listen_queue is queue:
                exporter.listen_queue = None

    @guarded("Client")
    async def Dial(self, request, context, identity):
        # upstream's client dials with the lease's bare name
        lease = self.state.leases.get(f"namespaces/{identity.namespace}/leases/{request.lease_name}")
        if lease is None or lease.client != identity.name:
            await context.abort(grpc.StatusCode.UNKNOWN, "permission denied")
        if not lease.exporter or lease.ended:
            await context.abort(grpc.StatusCode.UNKNOWN, "lease not active")
        exporter = self.state.exporters[(lease.namespace, lease.exporter)]
        deadline = asyncio.get_running_loop().time() + DIAL_NOT_READY_SECONDS
        while exporter.status == common_pb2.EXPORTER_STATUS_AVAILABLE:
            if asyncio.get_running_loop().time() > deadline:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "exporter is not ready (AVAILABLE)")
            await self.state.wait_change(0.5)
        if exporter.status not in DIALABLE or not exporter.online:
            name = common_pb2.ExporterStatus.Name(exporter.status)
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"exporter is {name}")
        if exporter.listen_queue is None:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "exporter is not listening")
        token = self.state.mint(lease)
        self.state.dials += 1
        response = jumpstarter_pb2.ListenResponse(
            router_endpoint=self.state.router_endpoint, router_token=token
        )
        exporter.listen_queue.put_nowait(response)
        return jumpstarter_pb2.DialResponse(router_endpoint=self.state.router_endpoint, router_token=token)


class ClientService(client_pb2_grpc.ClientServiceServicer):
    def __init__(self, state: State):
        self.state = state

    def lease_of(self, name: str, identity: Identity) -> Lease:
        lease = self.state.leases.get(name)
        if lease is None or lease.client != identity.name or lease.namespace != identity.namespace:
            raise KeyError(name)
        return lease

    @guarded("Client")
    async def CreateLease(self, request, context, identity):
        if request.parent != f"namespaces/{identity.namespace}":
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, f"parent {request.parent!r} is not yours")
        if not request.lease.selector and not request.lease.exporter_name:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "one of selector or exporter_name is required"
            )
        if not request.lease.HasField("duration"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "duration is required")
        lease = Lease(
            namespace=identity.namespace,
            id=request.lease_id or str(uuid.uuid4()),
            client=identity.name,
            selector=request.lease.selector,
            duration=request.lease.duration.ToTimedelta(),
        )
        self.state.leases[lease.name] = lease
        # the real controller reconciles a new lease at once (a watch event), before the client's first poll
        self.state.assign(lease)
        await self.state.notify()
        return self.state.lease_message(lease)

    @guarded("Client")
    async def GetLease(self, request, context, identity):
        try:
            return self.state.lease_message(self.lease_of(request.name, identity))
        except KeyError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"lease {request.name} not found")

    @guarded("Client")
    async def ListLeases(self, request, context, identity):
        leases = [
            self.state.lease_message(lease)
            for lease in self.state.leases.values()
            if lease.client == identity.name and not (request.only_active and lease.ended)
        ]
        return client_pb2.ListLeasesResponse(leases=leases)

    @guarded("Client")
    async def DeleteLease(self, request, context, identity):
        try:
            lease = self.lease_of(request.name, identity)
        except KeyError:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"lease {request.name} not found")
        if lease.ended:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"lease {request.name} already ended")
        self.state.release(lease, "Released")
        await self.state.notify()
        return empty_pb2.Empty()

    def exporter_message(self, exporter: Exporter) -> client_pb2.Exporter:
        identity = exporter.identity
        return client_pb2.Exporter(
            name=f"namespaces/{identity.namespace}/exporters/{identity.name}",
            labels=exporter.labels,
            online=exporter.online,
            status=exporter.status,
            status_message=exporter.status_message,
            enabled=True,
        )

    @guarded("Client")
    async def GetExporter(self, request, context, identity):
        _, namespace, _, name = (request.name.split("/") + ["", "", "", ""])[:4]
        exporter = self.state.exporters.get((namespace, name))
        if exporter is None or namespace != identity.namespace:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"exporter {request.name} not found")
        return self.exporter_message(exporter)

    @guarded("Client")
    async def ListExporters(self, request, context, identity):
        selector = parse(request.filter)
        exporters = [
            self.exporter_message(e)
            for (ns, _), e in self.state.exporters.items()
            if ns == identity.namespace and selector.matches(e.labels)
        ]
        return client_pb2.ListExportersResponse(exporters=exporters)


class RouterService(router_pb2_grpc.RouterServiceServicer):
    """Pairs the two callers whose tokens carry the same ``sub``; copies frames both ways."""

    def __init__(self, state: State):
        self.state = state
        self.pending: dict[str, tuple[asyncio.Queue, asyncio.Queue]] = {}  # sub -> the two sides' inboxes
        self.streams: dict[str, set[asyncio.Queue]] = {}  # lease name -> its streams' inboxes

    async def Stream(self, request_iterator, context):
        metadata = dict(context.invocation_metadata() or ())
        token = metadata.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(
                token, self.state.secret, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER
            )
        except jwt.InvalidTokenError as error:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"router token: {error}")
        subject = claims["sub"]
        # the first caller of a sub makes the pair of inboxes, the second takes it; frames a side
        # sends before its peer arrives wait in the peer's inbox
        if subject in self.pending:
            peer_inbox, inbox = self.pending.pop(subject)
        else:
            inbox, peer_inbox = self.pending.setdefault(subject, (asyncio.Queue(), asyncio.Queue()))
        streams = self.streams.setdefault(self.state.router_subjects.get(subject, ""), set())
        streams.add(inbox)

        async def forward():
            try:
                async for frame in request_iterator:
                    await peer_inbox.put(frame)
            finally:
                await peer_inbox.put(None)

        pump = asyncio.create_task(forward())
        try:
            while (frame := await inbox.get()) is not None:
                if frame is CUT:
                    await context.abort(grpc.StatusCode.UNAVAILABLE, "router stream cut (by the test)")
                yield router_pb2.StreamResponse(payload=frame.payload, frame_type=frame.frame_type)
        finally:
            pump.cancel()
            await peer_inbox.put(None)
            streams.discard(inbox)

    def cut(self, lease: str) -> int:
        """Fail every stream of ``lease`` with UNAVAILABLE, both sides; how many sides there were."""
        inboxes = self.streams.pop(lease, set())
        for inbox in inboxes:
            inbox.put_nowait(CUT)
        return len(inboxes)


class TestController:
    """Controller (ControllerService, ClientService) and router (RouterService) on two TLS ports of
    127.0.0.1, in a background thread. ``endpoint``/``router_endpoint`` are ``127.0.0.1:PORT``;
    ``ca_pem`` is the certificate clients trust."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path):
        cert, key = make_certificate(directory)
        self.ca_pem = cert.read_bytes()
        self._credentials = grpc.ssl_server_credentials([(key.read_bytes(), self.ca_pem)])
        # the process's grpc.aio loop (our exporter's and client's): grpc.aio supports one per process
        self._loop = event_loop()
        self.port = self.router_port = 0
        self.state: State = self.call(self._make_state())
        self.router = RouterService(self.state)
        self._servers: list[grpc.aio.Server] = []
        self._reconciler: asyncio.Task | None = None

    async def _make_state(self) -> State:
        return State(secret=uuid.uuid4().hex, router_endpoint="")

    def call(self, coroutine: Coroutine) -> Any:
        """Run ``coroutine`` on the controller's loop and return its result (10 s at most)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def run(self, function: Callable[[], Any]) -> Any:
        async def wrapped():
            result = function()
            await self.state.notify()
            return result

        return self.call(wrapped())

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def router_endpoint(self) -> str:
        return f"127.0.0.1:{self.router_port}"

    def start(self) -> None:
        """Serve (again, on the same ports); nothing when serving already."""
        if not self._servers:
            self.call(self._start())

    async def _start(self) -> None:
        # upstream's clients ping every 20 s even when idle (grpcOptions' defaults), as Go's server allows
        options = [
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 5000),
            ("grpc.http2.max_ping_strikes", 0),
        ]
        controller = grpc.aio.server(options=options)
        jumpstarter_pb2_grpc.add_ControllerServiceServicer_to_server(
            ControllerService(self.state), controller
        )
        client_pb2_grpc.add_ClientServiceServicer_to_server(ClientService(self.state), controller)
        router = grpc.aio.server(options=options)
        router_pb2_grpc.add_RouterServiceServicer_to_server(self.router, router)
        self.port = controller.add_secure_port(f"127.0.0.1:{self.port}", self._credentials)
        self.router_port = router.add_secure_port(f"127.0.0.1:{self.router_port}", self._credentials)
        self.state.router_endpoint = self.router_endpoint
        await controller.start()
        await router.start()
        self._servers = [controller, router]
        self._reconciler = asyncio.create_task(self._reconcile())

    async def _reconcile(self) -> None:
        while True:
            if self.state.reconcile():
                await self.state.notify()
            await asyncio.sleep(RECONCILE_SECONDS)

    def stop(self) -> None:
        """End every call and stream; the objects (exporters, clients, leases) stay."""
        self.call(self._stop())

    async def _stop(self) -> None:
        if self._reconciler:
            self._reconciler.cancel()
        for server in self._servers:
            await server.stop(grace=None)
        self._servers = []
        for exporter in self.state.exporters.values():
            exporter.listen_queue = None
            exporter.status_streams = 0

    def close(self) -> None:
        self.stop()

    def issue_token(self, kind: str, name: str, namespace: str = "default") -> str:
        """A token for an identity, a JWT as the real controller's are (upstream's ``jmp`` reads its expiry)."""
        claims = {
            "iss": "https://jumpstarter.dev/controller",
            "sub": f"{kind.lower()}:{namespace}:{name}",
            "iat": now(),
            "exp": now() + datetime.timedelta(days=1),
        }
        return jwt.encode(claims, self.state.secret, algorithm="HS256")

    def add_exporter(self, name: str, labels: dict[str, str], token: str, namespace: str = "default") -> None:
        """Create an Exporter object (as ``jmp admin create exporter -l k=v`` would) and its token."""
        identity = Identity("Exporter", namespace, name, token)

        def add():
            self.state.identities[token] = identity
            self.state.exporters[(namespace, name)] = Exporter(identity, dict(labels))

        self.run(add)

    def add_client(self, name: str, token: str, namespace: str = "default") -> None:
        """Create a Client object and its token."""
        self.run(lambda: self.state.identities.__setitem__(token, Identity("Client", namespace, name, token)))

    def exporter(self, name: str, namespace: str = "default") -> Exporter:
        return self.state.exporters[(namespace, name)]

    def lease(self, name: str) -> Lease:
        return self.state.leases[name]

    def leases_of(self, client: str) -> list[Lease]:
        return self.run(lambda: [lease for lease in self.state.leases.values() if lease.client == client])

    def cut_router_streams(self, lease: str) -> int:
        """End the router streams of ``lease`` (both sides see the stream fail); how many there were."""
        return self.run(lambda: self.router.cut(lease))
