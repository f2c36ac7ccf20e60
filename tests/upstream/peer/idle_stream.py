"""Upstream client (inside `jmp shell`): open the serial byte stream, idle SECONDS, use it again.

The idle period is the point of the check: upstream clients ping every 20 s, and a server that
does not permit it kills the open stream after about 100 s.

usage: python idle_stream.py SECONDS
"""

import sys
import time

from jumpstarter.utils.env import env

idle = float(sys.argv[1])
with env() as client, client.serial.stream() as stream:
    stream.send(b"before")
    print("echo before idle:", stream.receive().decode(), flush=True)
    time.sleep(idle)  # the idle time under test, not a wait for something
    stream.send(b"after")
    print("echo after idle:", stream.receive().decode(), flush=True)
