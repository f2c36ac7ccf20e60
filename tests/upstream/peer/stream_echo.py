"""Upstream client (inside `jmp shell`): send bytes through CHILD's byte stream, print what came back.

usage: python stream_echo.py CHILD TEXT
"""

import sys

from jumpstarter.utils.env import env

child, text = sys.argv[1], sys.argv[2].encode()
with env() as client, getattr(client, child).stream() as stream:
    stream.send(text)
    received = b""
    while len(received) < len(text):
        received += stream.receive()
    print("echoed:", received.decode())
