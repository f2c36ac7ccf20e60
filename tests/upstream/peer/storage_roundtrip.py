"""Upstream client (inside `jmp shell`): write SIZE MiB to `storage`, read it back, print both digests.

usage: python storage_roundtrip.py SIZE_MIB [CHILD]
"""

import hashlib
import os
import sys
import tempfile

from jumpstarter.utils.env import env


def digest(path: str) -> str:
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


size, child = int(sys.argv[1]) << 20, sys.argv[2] if len(sys.argv) > 2 else "storage"
with tempfile.TemporaryDirectory() as scratch, env() as client:
    storage = getattr(client, child)
    sent, received = os.path.join(scratch, "sent.img"), os.path.join(scratch, "received.img")
    with open(sent, "wb") as file:
        file.write(os.urandom(size))
    storage.host()
    storage.write_local_file(sent)
    storage.read_local_file(received)
    print("sent", os.path.getsize(sent), digest(sent))
    print("received", os.path.getsize(received), digest(received))
