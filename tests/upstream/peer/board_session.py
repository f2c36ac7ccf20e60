"""Upstream client (inside `jmp shell`) on the virtual board: boot to the login prompt, then HTTP via a forward.

Power-cycles the board with `serial.pexpect()` attached, expects `login:`, then fetches `/`
from the board's HTTP service through upstream's TCP port forward on `network`.
"""

import urllib.request

from jumpstarter.utils.env import env
from jumpstarter_driver_network.adapters import TcpPortforwardAdapter

with env() as client:
    with client.serial.pexpect() as console:
        client.power.off()
        client.power.on()
        console.expect("login:", timeout=120)
        print("console:", repr(console.after))
    with TcpPortforwardAdapter(client=client.network) as (host, port):
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=60) as response:
            print("http:", response.status, response.read(200).decode(errors="replace").replace("\n", " "))
