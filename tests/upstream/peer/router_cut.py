"""Upstream client (inside `jmp shell` on a controller lease): a call in flight while the test cuts
the lease's router streams, then the next call.

Prints ``in flight`` once the serial byte stream is open and waiting (the test cuts then), what
became of that stream, then the power state after ``power.off()`` on a fresh connection (tried
up to three times: upstream's gRPC channel may fail a call at once while it reconnects).

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
    for attempt in range(3):  # upstream's channel may fail one call fast while it reconnects
        try:
            client.power.off()
            break
        except Exception as error:  # noqa: BLE001 - printed for the test's failure message
            print(f"next call, attempt {attempt + 1}: {type(error).__name__}: {error}", flush=True)
    print("next call: power state", client.power.call("state"), flush=True)
