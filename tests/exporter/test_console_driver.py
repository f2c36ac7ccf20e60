"""ConsoleService serves any driver implementing ``driver.console.ConsoleDriver``, not only
the serial driver: the exporter knows the interface, no particular driver."""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest

from jumpstarter_jupyter.driver import Driver
from jumpstarter_jupyter.driver.console import ConsoleDriver
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.drivers.serial.console import Console
from jumpstarter_jupyter.protocol.v1 import console_pb2
from support import client_for


@dataclass
class ShoutingUart(Driver, ConsoleDriver):
    """A console of its own that answers every key in capitals."""

    console: Console = field(init=False, default_factory=Console)

    def write(self, data: bytes) -> None:
        self.console.append(data.upper())


def test_console_service_transmits_to_and_follows_any_console_driver():
    with client_for(ShoutingUart(), "uart") as uart:
        connection, uuid = uart.connection, uart.connection.uuid(uart.path)
        acks = connection.console.Transmit(
            iter([console_pb2.TransmitRequest(uuid=uuid, data=b"hello")]), metadata=connection.metadata
        )
        assert [ack.written for ack in acks] == [5]
        chunks = connection.console.Follow(
            console_pb2.FollowRequest(uuid=uuid, offset=-1, snapshot=True), metadata=connection.metadata
        )
        assert b"".join(chunk.data for chunk in chunks) == b"HELLO"


def test_a_driver_without_a_console_is_refused_by_name():
    with client_for(MockPower(), "power") as power:
        connection = power.connection
        request = console_pb2.FollowRequest(uuid=connection.uuid(power.path), offset=-1, snapshot=True)
        with pytest.raises(grpc.RpcError) as refused:
            list(connection.console.Follow(request, metadata=connection.metadata))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert refused.value.details() == "driver power has no console"
