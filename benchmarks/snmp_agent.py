"""A private net-snmp agent with a writable outlet table, for SnmpPower's tests and benchmark.

Debian's ``snmpd`` runs with only the config written here (``-C -c``), on a free loopback UDP
port, never the machine's own agent, config or port 161; its persistent directory (where
``createUser`` keys are saved) is ours too. A ``pass_persist`` script serves a Raritan-shaped
outlet table (PDU2-MIB's switchingOperation and outletSwitchingState columns) and keeps the
outlets' states in a JSON file. v2c communities ``private`` (read-write) and ``public``
(read-only), and the v3 user ``USER`` (SHA + AES).

As a script (``python benchmarks/snmp_agent.py DIR``) it prints ``serving 127.0.0.1:PORT`` and
runs until it is terminated.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SNMPD = "/usr/sbin/snmpd"
BASE = "1.3.6.1.4.1.13742.6.4.1.2.1"  # PDU2-MIB outletSwitchControlEntry
OUTLETS = 4
USER, AUTH_KEY, PRIV_KEY = "lab", "auth-secret-1", "priv-secret-1"
STARTUP = 30.0  # seconds for the agent to come up (a loaded machine)

# The pass_persist protocol (net-snmp's snmpd.conf(5)): PING/PONG, then get/getnext/set blocks.
# snmpd sends a blank line after a set, which the loop skips rather than taking it as the end.
OUTLET_SCRIPT = """#!{python}
import json, sys
STATE, BASE = sys.argv[1], ".{base}"
CONTROL, STATUS = BASE + ".2.1.", BASE + ".3.1."

def load():
    with open(STATE) as f:
        return json.load(f)

def table():
    rows = {{}}
    for outlet, on in load().items():
        rows[CONTROL + outlet] = int(on)  # switchingOperation: on(1), off(0)
        rows[STATUS + outlet] = 7 if on else 8  # outletSwitchingState: on(7), off(8)
    return rows

def key(oid):
    return tuple(int(part) for part in oid.strip(".").split("."))

def answer(oid, rows):
    return f"{{oid}}\\ninteger\\n{{rows[oid]}}\\n" if oid in rows else "NONE\\n"

for line in sys.stdin:
    command = line.strip()
    if command == "PING":
        reply = "PONG\\n"
    elif command == "get":
        reply = answer(sys.stdin.readline().strip(), table())
    elif command == "getnext":
        oid, rows = sys.stdin.readline().strip(), table()
        later = sorted((o for o in rows if key(o) > key(oid)), key=key)
        reply = answer(later[0], rows) if later else "NONE\\n"
    elif command == "set":
        oid = sys.stdin.readline().strip()
        kind, _, value = sys.stdin.readline().strip().partition(" ")
        state, outlet = load(), oid.rpartition(".")[2]
        if not oid.startswith(CONTROL) or outlet not in state:
            reply = "not-writable\\n"
        elif kind != "integer" or value not in ("0", "1"):
            reply = "wrong-value\\n"
        else:
            state[outlet] = value == "1"
            with open(STATE, "w") as f:
                json.dump(state, f)
            reply = "DONE\\n"
    else:
        continue
    sys.stdout.write(reply)
    sys.stdout.flush()
"""


@dataclass
class Agent:
    """The running agent: its port and the file holding the outlets' states."""

    port: int
    state: Path

    def outlets(self) -> dict[str, bool]:
        return json.loads(self.state.read_text())

    def reset(self, **outlets: bool) -> None:
        self.state.write_text(
            json.dumps({str(n): outlets.get(f"o{n}", False) for n in range(1, OUTLETS + 1)})
        )


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running(directory: Path) -> Iterator[Agent]:
    """An agent whose files live in ``directory``, all outlets off, until the block ends."""
    if not os.path.exists(SNMPD):
        raise RuntimeError(f"{SNMPD} is missing: `make test` installs Debian's snmpd")
    script = directory / "outlets.py"
    script.write_text(OUTLET_SCRIPT.format(python=sys.executable, base=BASE))
    script.chmod(0o755)
    agent = Agent(free_udp_port(), directory / "outlets.json")
    agent.reset()
    config = directory / "snmpd.conf"
    config.write_text(f"""agentAddress udp:127.0.0.1:{agent.port}
rwcommunity private 127.0.0.1
rocommunity public 127.0.0.1
createUser {USER} SHA "{AUTH_KEY}" AES "{PRIV_KEY}"
rwuser {USER} priv
pass_persist .{BASE} {script} {agent.state}
""")
    log = directory / "snmpd.log"
    # -M/-m: no MIB files (numeric OIDs only); SNMP_PERSISTENT_DIR: createUser's keys stay here
    env = {**os.environ, "SNMP_PERSISTENT_DIR": str(directory / "persist")}
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                SNMPD,
                "-f",
                "-Lo",
                "-C",
                "-c",
                str(config),
                "-M",
                str(directory),
                "-m",
                "",
                "-p",
                str(directory / "snmpd.pid"),
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + STARTUP
        while b"NET-SNMP version" not in log.read_bytes():  # printed once it listens
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"snmpd did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)  # polling for the log line, bounded by the deadline
        yield agent
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leave through `running`, which stops the agent
    with running(Path(sys.argv[1])) as agent:
        print(f"serving 127.0.0.1:{agent.port}", flush=True)
        signal.pause()
