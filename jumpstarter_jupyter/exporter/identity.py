"""JupyterHub identity of lease holders: the exporter asks the hub whose a credential is.

A kernel inside JupyterHub proves its user with a short-lived hub token that can only read
its owner's name (``read:users:name!user``; ``jumpstarter_jupyter.client.identity`` makes
it). An exporter started with the hub's API URL asks ``GET {hub_api_url}/user`` with that
token, makes the answer the lease's holder and marks it verified. A token the hub rejects,
one that is not a user's, or one that grants more than the name (the server's own
``JUPYTERHUB_API_TOKEN`` would) is refused with the reason. Answers are cached for a minute,
so a burst of requests asks the hub once; the cache is keyed by a hash, never the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import NoReturn

log = logging.getLogger("jumpstarter_jupyter.exporter.identity")

HUB_TIMEOUT = 10.0  # seconds for the hub to answer
CACHE_SECONDS = 60.0
# all a credential may grant: reading its user's name (the hub adds the groups to that)
IDENTIFY_SCOPES = ("read:users:name", "read:users:groups")


class IdentityRefused(PermissionError):
    """A credential that does not prove a hub user: the lease (or notice) is refused with this."""


@dataclass(frozen=True)
class HubUser:
    """Whom the hub says a credential belongs to, and what the credential grants."""

    name: str
    scopes: tuple[str, ...]


def hub_api_url(value: object) -> str:
    """Check a hub API URL from the config or the command line: ``http(s)://HOST:PORT/hub/api``."""
    if (
        not isinstance(value, str)
        or urllib.parse.urlsplit(value).scheme not in ("http", "https")
        or not urllib.parse.urlsplit(value).netloc
    ):
        raise ValueError(f"expected the hub's API URL, such as http://127.0.0.1:8081/hub/api, got {value!r}")
    return value.rstrip("/")


def fingerprint(token: str) -> str:
    """A short, non-secret name for a credential in logs: ``sha256:1a2b3c4d5e6f``."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()[:12]


class HubIdentity:
    """Verify hub credentials against the hub's REST API at ``api_url`` (``…/hub/api``)."""

    def __init__(self, api_url: str, cache_seconds: float = CACHE_SECONDS):
        self.api_url = api_url.rstrip("/")
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, HubUser]] = {}  # fingerprint -> (valid until, user)

    async def verify(self, token: str) -> HubUser:
        """The hub user ``token`` proves; raises :class:`IdentityRefused` naming why not."""
        if not token:
            raise IdentityRefused(
                "this exporter verifies JupyterHub users and no hub credential came with the "
                "request (a kernel inside JupyterHub sends one over TLS, a unix socket or loopback)"
            )
        key, now = fingerprint(token), time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        user = await asyncio.to_thread(self._ask, token)
        self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        self._cache[key] = (now + self.cache_seconds, user)
        log.info("hub user %s verified (credential %s, scopes %s)", user.name, key, " ".join(user.scopes))
        return user

    def _ask(self, token: str) -> HubUser:
        """``GET /user`` with ``token`` (on a worker thread: it blocks)."""
        request = urllib.request.Request(f"{self.api_url}/user", headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=HUB_TIMEOUT) as response:
                model = json.load(response)
        except urllib.error.HTTPError as err:
            self._refused(
                token, f"the hub at {self.api_url} rejected the credential ({err.code} {err.reason})"
            )
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            self._refused(token, f"cannot ask the hub at {self.api_url} whose the credential is: {reason}")
        return self._user(token, model)

    def _user(self, token: str, model: dict) -> HubUser:
        name, kind = model.get("name"), model.get("kind", "user")
        if kind != "user" or not isinstance(name, str) or not name:
            self._refused(token, f"the credential belongs to a hub {kind} ({name!r}), not a hub user")
        scopes = tuple(str(scope) for scope in model.get("scopes", ()))
        broader = [scope for scope in scopes if not scope.startswith(IDENTIFY_SCOPES)]
        if broader:
            self._refused(
                token,
                f"the credential of hub user {name} grants more than its name ({', '.join(broader[:4])}): "
                "send a token with only the read:users:name!user scope, never JUPYTERHUB_API_TOKEN",
            )
        return HubUser(name, scopes)

    @staticmethod
    def _refused(token: str, reason: str) -> NoReturn:
        log.warning("hub credential %s refused: %s", fingerprint(token), reason)
        raise IdentityRefused(reason)
