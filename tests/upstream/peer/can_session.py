"""Upstream's CanClient (jumpstarter-driver-can 0.9.0) on the exporter ``jmp shell`` points at.

    jmp shell --tls-grpc ADDRESS --tls-grpc-insecure -- python can_session.py [--shutdown]

Prints one JSON line of what it saw: send/receive, filters, a periodic task, the bus state;
with ``--shutdown``, also whether the bus still carries frames after one client shut down.
"""

import json
import sys

import can
from jumpstarter.utils.env import env


def frame(ident, data=b""):
    return can.Message(arbitration_id=ident, data=data, is_extended_id=False)


def main():
    out = {}
    with env() as client:
        bus, peer = client.can, client.peer
        out["client"] = type(bus).__module__ + "." + type(bus).__name__
        out["state"], out["protocol"] = bus.state.name, bus.protocol.name
        while bus.recv(0) is not None:  # what earlier sessions left on the bus
            pass
        peer.send(frame(0x123, b"\xde\xad\xbe\xef"))
        msg = bus.recv(10)
        out["received"] = [msg.arbitration_id, msg.data.hex(), msg.is_extended_id, msg.timestamp > 0]
        bus.set_filters([{"can_id": 0x200, "can_mask": 0x700}])
        for ident in (0x100, 0x201, 0x300, 0x202):
            peer.send(frame(ident))
        out["filtered"] = [bus.recv(10).arbitration_id for _ in range(2)]
        bus.set_filters(None)
        task = peer.send_periodic(frame(0x50, b"\x05"), 0.01, autostart=False)
        task.start()
        out["periodic"] = [bus.recv(10).arbitration_id for _ in range(3)]
        task.stop()
        peer.send(frame(0x51))  # nothing of the stopped task follows this marker
        while (msg := bus.recv(10)).arbitration_id != 0x51:
            pass
        out["after_stop"] = bus.recv(0) is None
        if "--shutdown" in sys.argv:
            peer.shutdown()
            peer.send(frame(0x60))
            out["after_shutdown"] = bus.recv(10).arbitration_id
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
