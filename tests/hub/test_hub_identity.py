"""Verified hub identity against the real hub: the exporter asks the hub whose a credential is.

Credentials here are real hub tokens made through the hub's REST API; the requests are raw
``LeaseService`` calls, so each test says exactly what the exporter received.
"""

from __future__ import annotations

import queue
import secrets

import grpc
import pytest

from jumpstarter_jupyter import connect
from jumpstarter_jupyter.client.identity import hub_credential
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.exporter.identity import fingerprint
from jumpstarter_jupyter.protocol.v1 import lease_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import lease_pb2_grpc

NAME_ONLY = ["read:users:name!user"]
DEADLINE = 60


class Holding:
    """One raw ``Hold`` stream: the first request, then the events the exporter sends."""

    def __init__(self, endpoint: str, **request):
        self.channel = grpc.insecure_channel(endpoint)
        self.stub = lease_pb2_grpc.LeaseServiceStub(self.channel)
        self.requests: queue.Queue = queue.Queue()
        self.requests.put(pb.HoldRequest(purpose="identity test", **request))
        self.events = self.stub.Hold(iter(self.requests.get, None), timeout=DEADLINE)

    def first(self) -> pb.LeaseEvent:
        """The grant, or the refusal (QUEUED and hook output skipped)."""
        for event in self.events:
            if event.kind in (pb.LEASE_EVENT_GRANTED, pb.LEASE_EVENT_ENDED):
                return event
        raise AssertionError("the exporter closed the stream without an answer")

    def next_kind(self, kind: int) -> pb.LeaseEvent:
        return next(event for event in self.events if event.kind == kind)

    def close(self, token: str = "") -> None:
        if token:
            self.stub.Release(pb.ReleaseRequest(token=token), timeout=DEADLINE)
        self.requests.put(None)
        self.events.cancel()
        self.channel.close()


@pytest.fixture
def holding(lab_board):
    """``holding(**HoldRequest fields)`` -> the first answer; every stream is closed afterwards."""
    opened: list[tuple[Holding, pb.LeaseEvent]] = []

    def hold(**request) -> tuple[Holding, pb.LeaseEvent]:
        stream = Holding(lab_board.endpoint, **request)
        opened.append((stream, answer := stream.first()))
        return stream, answer

    yield hold
    for stream, answer in opened:
        stream.close(answer.token if answer.kind == pb.LEASE_EVENT_GRANTED else "")


def test_a_hub_users_name_only_token_makes_a_verified_holder(hub, lab_board, holding):
    token = hub.token("u1", NAME_ONLY)
    _, granted = holding(holder="u1", hub_token=token)
    assert granted.kind == pb.LEASE_EVENT_GRANTED, granted.message
    assert (granted.lease.holder, granted.lease.verified) == ("u1", True)
    status = lease_pb2_grpc.LeaseServiceStub(grpc.insecure_channel(lab_board.endpoint)).Status(
        pb.StatusRequest()
    )
    assert status.hub_identity and status.lease.holder == "u1" and status.lease.verified
    # what the exporter logs of it: the hub's answer and a fingerprint, never the token
    assert (
        f"hub user u1 verified (credential {fingerprint(token)}, "
        "scopes read:users:groups!user=u1 read:users:name!user=u1)" in lab_board.logged()
    )
    assert token not in lab_board.logged()


def test_the_claimed_name_does_not_matter(hub, holding):
    _, granted = holding(hub_token=hub.token("u2", NAME_ONLY))  # no claim: the hub names the holder
    assert granted.kind == pb.LEASE_EVENT_GRANTED and granted.lease.holder == "u2" and granted.lease.verified


def test_another_users_name_with_u2s_credential_is_refused(hub, holding):
    _, refused = holding(holder="u1", hub_token=hub.token("u2", NAME_ONLY))
    assert refused.kind == pb.LEASE_EVENT_ENDED
    assert refused.message == "the request claims to be 'u1', but the hub says its credential is 'u2''s"


def test_a_credential_the_hub_did_not_issue_is_refused(hub, holding):
    _, refused = holding(holder="u1", hub_token=secrets.token_hex(16))
    assert refused.kind == pb.LEASE_EVENT_ENDED
    assert refused.message == f"the hub at {hub.api_url} rejected the credential (403 Forbidden)"


def test_a_credential_granting_more_than_the_name_is_refused(hub, holding):
    _, refused = holding(holder="u1", hub_token=hub.token("u1", ["read:users!user", "access:servers!user"]))
    assert refused.kind == pb.LEASE_EVENT_ENDED
    assert (
        "the credential of hub user u1 grants more than its name (access:servers!user=u1" in refused.message
    )
    assert "never JUPYTERHUB_API_TOKEN" in refused.message


def test_no_credential_is_refused(holding):
    _, refused = holding(holder="u1")
    assert refused.kind == pb.LEASE_EVENT_ENDED
    assert (
        "this exporter verifies JupyterHub users and no hub credential came with the request"
        in refused.message
    )


def test_a_hand_over_request_names_the_verified_user_or_says_unverified(hub, lab_board, holding):
    stream, granted = holding(holder="u1", hub_token=hub.token("u1", NAME_ONLY))
    assert granted.kind == pb.LEASE_EVENT_GRANTED
    asking = lease_pb2_grpc.LeaseServiceStub(grpc.insecure_channel(lab_board.endpoint))
    asking.RequestHandover(
        pb.HandoverRequest(requester="u2", hub_token=hub.token("u2", NAME_ONLY)), timeout=DEADLINE
    )
    assert stream.next_kind(pb.LEASE_EVENT_HANDOVER_REQUESTED).message == "u2 asks for the board"
    asking.RequestHandover(pb.HandoverRequest(requester="u2"), timeout=DEADLINE)
    assert stream.next_kind(pb.LEASE_EVENT_HANDOVER_REQUESTED).message == "u2 (unverified) asks for the board"
    with pytest.raises(grpc.RpcError) as forged:
        asking.RequestHandover(
            pb.HandoverRequest(requester="u1", hub_token=hub.token("u2", NAME_ONLY)), timeout=DEADLINE
        )
    assert (
        forged.value.code() == grpc.StatusCode.PERMISSION_DENIED
        and "claims to be 'u1'" in forged.value.details()
    )


def test_the_client_sends_a_hub_credential_only_over_tls_a_unix_socket_or_loopback(monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    with pytest.raises(JumpstarterError, match="sent only over TLS, a unix socket or loopback"):
        hub_credential("10.0.0.5:7777", tls=False)
    for private in ("127.0.0.1:7777", "[::1]:7777", "localhost:7777", "unix:/run/bench.sock", "bench.sock"):
        with pytest.raises(JumpstarterError, match="does not run in a JupyterHub server"):
            hub_credential(private, tls=False)  # past the transport check: no hub here
    with pytest.raises(JumpstarterError, match="does not run in a JupyterHub server"):
        hub_credential("10.0.0.5:7777", tls=True)


def test_a_hub_that_does_not_let_servers_make_tokens_is_named(hub, monkeypatch):
    # a server token without tokens!user, as a hub without the shared lab's config gives
    monkeypatch.setenv("JUPYTERHUB_API_URL", hub.api_url)
    monkeypatch.setenv("JUPYTERHUB_USER", "u1")
    monkeypatch.setenv(
        "JUPYTERHUB_API_TOKEN", hub.token("u1", ["users:activity!user", "access:servers!user"])
    )
    with pytest.raises(
        JumpstarterError,
        match=r"JupyterHub refused this server a name-only token for the lease \(403: "
        r".*c.Spawner.server_token_scopes with 'tokens!user'",
    ):
        hub_credential("127.0.0.1:7777", tls=False)


def test_a_client_outside_jupyterhub_is_told_why(lab_board, monkeypatch):
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(
        JumpstarterError, match="verifies JupyterHub users, and this process does not run in a JupyterHub"
    ):
        connect(lab_board.endpoint)
    with connect(lab_board.endpoint, lease=False) as watcher:  # watching needs no identity
        assert watcher.connection.lease_status().hub_identity
