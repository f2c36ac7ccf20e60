"""Proving this kernel's JupyterHub user to an exporter that verifies lease holders.

The server's ``JUPYTERHUB_API_TOKEN`` grants access to the user's whole server, so it never
leaves for an exporter. With it, this process asks the hub for a token that can only read the
user's name (``read:users:name!user``) and lives ten minutes, and sends that instead, and only
over TLS, a unix socket or loopback. The hub must let servers make such tokens (README,
"Running a shared lab": ``c.Spawner.server_token_scopes`` gains ``tokens!user``).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from jumpstarter_jupyter.errors import JumpstarterError

NAME_SCOPE = "read:users:name!user"
LIFETIME = 600  # seconds a hub credential lives
RENEW_BEFORE = 120  # a cached credential with less left than this is replaced
HUB_TIMEOUT = 10.0
NOTE = "jumpstarter-jupyter: lease holder identity (name only)"
TCP_ENDPOINT = re.compile(r"^(?P<host>.+):(?P<port>\d{1,5})$")

_lock = threading.Lock()
_cached: tuple[str, float] | None = None  # (token, expires: monotonic seconds)


def hub_user() -> str:
    """This process's JupyterHub user ("" outside JupyterHub), as the hub's spawner set it."""
    return os.environ.get("JUPYTERHUB_USER", "")


def hub_credential(endpoint: str, tls: bool) -> str:
    """A name-only hub token for the exporter at ``endpoint`` (``tls``: the channel uses TLS).

    Raises :class:`JumpstarterError` outside JupyterHub, over a transport that could expose it
    (plain TCP beyond loopback), or when the hub refuses to make one.
    """
    if not tls and not _private(endpoint):
        raise JumpstarterError(
            f"the exporter at {endpoint} verifies JupyterHub users, and the hub credential is sent only over TLS, "
            "a unix socket or loopback: connect with a CA (jj.connect(..., tls_ca=PEM), j --tls-ca) to an exporter "
            "serving TLS (--tls-cert/--tls-key)"
        )
    global _cached
    with _lock:
        if _cached is None or _cached[1] - time.monotonic() < RENEW_BEFORE:
            _cached = (_mint(), time.monotonic() + LIFETIME)
        return _cached[0]


def _private(endpoint: str) -> bool:
    """True for a unix socket or a loopback address (upstream's rule: no numeric port = a socket)."""
    match = TCP_ENDPOINT.match(endpoint)
    if endpoint.startswith("unix:") or match is None:
        return True
    host = match["host"].strip("[]")
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mint() -> str:
    """Ask the hub for a name-only token with the server's own token (which stays here)."""
    api, user, own = (
        os.environ.get(name, "") for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_USER", "JUPYTERHUB_API_TOKEN")
    )
    if not (api and user and own):
        raise JumpstarterError(
            "this exporter verifies JupyterHub users, and this process does not run in a "
            "JupyterHub server (JUPYTERHUB_API_URL, JUPYTERHUB_USER, JUPYTERHUB_API_TOKEN unset)"
        )
    body = json.dumps({"scopes": [NAME_SCOPE], "expires_in": LIFETIME, "note": NOTE}).encode()
    request = urllib.request.Request(
        f"{api.rstrip('/')}/users/{urllib.parse.quote(user)}/tokens",
        data=body,
        method="POST",
        headers={"Authorization": f"token {own}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=HUB_TIMEOUT) as response:
            return json.load(response)["token"]
    except urllib.error.HTTPError as err:
        raise JumpstarterError(
            f"JupyterHub refused this server a name-only token for the lease ({err.code}: {_hub_message(err)}); "
            "the hub config must let servers make them: c.Spawner.server_token_scopes with 'tokens!user' and "
            f"'{NAME_SCOPE}' (README: Running a shared lab)"
        ) from None
    except (urllib.error.URLError, OSError, ValueError, KeyError) as exc:
        raise JumpstarterError(
            f"cannot get a hub credential from {api}: {getattr(exc, 'reason', exc)}"
        ) from None


def _hub_message(err: urllib.error.HTTPError) -> str:
    try:
        return json.load(err).get("message", err.reason)
    except (ValueError, OSError):
        return str(err.reason)
