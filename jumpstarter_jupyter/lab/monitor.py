"""The pool as the server sees it: every board's state, probed together, at most twice a second.

The sidebars of every open tab poll ``GET /jumpstarter/boards[?selector=S]``; one probe round
answers all of them (results live ``FRESH`` seconds), each exporter keeps one gRPC channel
across rounds, and a round asks every exporter at once, so a poll costs two small calls per
board, not a new connection, and one round trip, not one per board.
"""

from __future__ import annotations

import os
import threading
import time

import grpc

from jumpstarter_jupyter.client import pool
from jumpstarter_jupyter.client.connection import channel_target
from jumpstarter_jupyter.client.lease import force_release, request_handover
from jumpstarter_jupyter.errors import ConfigError, JumpstarterError
from jumpstarter_jupyter.protocol.metadata import PASSPHRASE_KEY
from jumpstarter_jupyter.selector import SelectorError, parse

FRESH = 0.5  # seconds a probe round answers every poll
HOST_ENTRY = "$JUMPSTARTER_HOST"


class PoolMonitor:
    """Probe rounds over the pool (and ``$JUMPSTARTER_HOST``), and the actions on one board."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()
        self._last: tuple[float, dict] | None = None

    def entries(self) -> dict[str, pool.PoolEntry]:
        """The pool's boards, plus the server's ``$JUMPSTARTER_HOST`` when it names no pool board."""
        entries = pool.load_pool()
        host = os.environ.get("JUMPSTARTER_HOST")
        if host and host not in entries and not host.startswith(pool.POOL_PREFIX):
            entries[host] = pool.PoolEntry(
                name=host, endpoint=host, source=HOST_ENTRY, description="the server's $JUMPSTARTER_HOST"
            )
        return entries

    def boards(self, selector: str = "") -> dict:
        """``{"boards": [state, ...]}``, each state with ``matches``: whether ``selector`` matches its
        labels (every board matches none); ``error`` says why for a broken pool file, and
        ``selector_error`` for a selector that does not parse."""
        answer = self._round()
        try:
            chosen = parse(selector)
        except SelectorError as exc:
            return {**answer, "selector_error": str(exc)}
        return {
            **answer,
            "boards": [{**board, "matches": chosen.matches(board["labels"])} for board in answer["boards"]],
        }

    def _round(self) -> dict:
        """Every board's state, probed all at once (or the last round's, if fresh)."""
        with self._lock:
            if self._last is not None and time.monotonic() - self._last[0] < FRESH:
                return self._last[1]
            try:
                entries = self.entries()
                started = [
                    (entry, pool.probe_entry(entry, self._channel(entry.endpoint)))
                    for entry in entries.values()
                ]
                answer = {"boards": [self._state(entry, probed) for entry, probed in started]}
            except ConfigError as exc:
                answer = {"boards": [], "error": str(exc)}
            self._last = (time.monotonic(), answer)
            return answer

    def _state(self, entry: pool.PoolEntry, probed: pool.Probe | str) -> dict:
        state = pool.board_state(entry, probed)
        admin = bool(entry.admin_passphrase_file) and os.access(entry.admin_passphrase_file, os.R_OK)
        return {**state.as_dict(), "admin": admin, "summary": pool.describe_state(state)}

    def _channel(self, endpoint: str) -> grpc.Channel:
        channel = self._channels.get(endpoint)
        if channel is None:
            channel = self._channels[endpoint] = grpc.insecure_channel(channel_target(endpoint))
        return channel

    def _entry(self, name: str) -> pool.PoolEntry:
        entry = self.entries().get(name)
        if entry is None:
            raise KeyError(f"no board named {name!r} in the pool")
        return entry

    def request_handover(self, name: str) -> str:
        """Ask the holder of board ``name`` for it, as this server's user."""
        entry = self._entry(name)
        try:
            metadata = _metadata(entry.passphrase())
            return request_handover(self._channel(entry.endpoint), metadata, entry.endpoint)
        except JumpstarterError as exc:
            raise JumpstarterError(f"{name}: {getattr(exc, 'reason', exc)}") from None

    def force_release(self, name: str) -> str:
        """End whoever's lease on board ``name`` with the pool entry's admin credential."""
        entry = self._entry(name)
        admin = entry.admin_passphrase()
        if admin is None:
            raise PermissionError(f"{name}: the pool names no admin_passphrase_file for this board")
        try:
            metadata = _metadata(entry.passphrase())
            return force_release(self._channel(entry.endpoint), metadata, entry.endpoint, admin)
        except JumpstarterError as exc:
            raise JumpstarterError(f"{name}: {getattr(exc, 'reason', exc)}") from None
        finally:
            self._last = None  # the next poll shows the board free

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()


def _metadata(passphrase: str | None) -> tuple:
    return ((PASSPHRASE_KEY, passphrase),) if passphrase else ()
