"""Upstream client (inside `jmp shell` on a controller lease): a call in flight while the test cuts
the lease's router streams, then the next call.

Prints ``in flight`` once the serial byte stream is open and waiting (the test cuts then), what
became of that stream, then the power state after ``power.off()``: the first call after the cut
must work. The call in flight fails only once `jmp shell` has closed the client's connection (it
closes it when its copy towards the cut router stream fails), so the client's channel holds no
dead connection then: its next call connects anew, and `jmp shell` dials again.

usage: python router_cut.py
"""

from jumpstarter.utils.env import env

with env() as client:
    client.power.on()
    try:
        with client.serial.stream() as stream:
            stream.send(b"ping")
            stream.receive()
            print("in flight", flush=True)
            data = stream.receive()  # nothing more comes: waits until the test cuts the stream
            print(f"the call in flight ended: {data!r}", flush=True)
    except Exception as error:  # noqa: BLE001 - what the cut raised is the output under test
        print(f"the call in flight failed: {type(error).__name__}: {error}", flush=True)
    client.power.off()  # no retry: a failure here fails the test with its error
    print("next call: power state", client.power.call("state"), flush=True)
