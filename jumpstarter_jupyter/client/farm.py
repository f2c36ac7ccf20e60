"""Any free board: the pool's boards a label selector matches, and one lease on one of them.

``take_any`` takes a free match at once. When none is free it waits in line at every match
(``Hold`` with offers): the first exporter to offer its board gets an accept, every other
request is withdrawn at that moment, so one request never holds two boards and leaves no
queue entry behind (a waiter that dies leaves none either: its streams break and each
exporter drops it). The place reported while waiting is the best place across the boards.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from jumpstarter_jupyter.client import pool
from jumpstarter_jupyter.client.connection import CHANNEL_OPTIONS, channel_target
from jumpstarter_jupyter.client.lease import Lease, Withdrawn
from jumpstarter_jupyter.durations import format_duration
from jumpstarter_jupyter.errors import ConnectionFailed, JumpstarterError, LeaseTimeout
from jumpstarter_jupyter.protocol.metadata import PASSPHRASE_KEY
from jumpstarter_jupyter.selector import parse

log = logging.getLogger("jumpstarter_jupyter.farm")


@dataclass
class Board:
    """A board of the pool as a request for one sees it: its entry, state, channel and credentials."""

    entry: pool.PoolEntry
    state: pool.BoardState
    channel: grpc.Channel
    passphrase: str | None

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def metadata(self) -> tuple:
        return ((PASSPHRASE_KEY, self.passphrase),) if self.passphrase else ()

    def lease(self, purpose: str, duration: float, hooks: bool) -> Lease:
        """Ask for this board's lease, answering offers (not waiting yet)."""
        return Lease(
            self.channel,
            self.metadata,
            self.entry.endpoint,
            purpose=purpose,
            duration=duration,
            hooks=hooks,
            offers=True,
            heartbeat=self.state.heartbeat,
            hub_identity=self.state.hub_identity,
        )


def find(selector: str, entries: dict[str, pool.PoolEntry] | None = None) -> list[Board]:
    """The reachable boards of the pool whose labels (the exporter's and the pool's) match
    ``selector``, probed all at once; :class:`ConnectionFailed` when none does, naming them all."""
    chosen = parse(selector)
    entries = pool.load_pool() if entries is None else entries
    started = []
    for entry in entries.values():
        channel = grpc.insecure_channel(channel_target(entry.endpoint), options=CHANNEL_OPTIONS)
        started.append((entry, channel, pool.probe_entry(entry, channel)))
    boards, others = [], []
    for entry, channel, probed in started:
        state = pool.board_state(entry, probed)
        if state.reachable and state.leases and chosen.matches(state.labels):
            boards.append(Board(entry, state, channel, entry.passphrase()))
            continue
        channel.close()
        others.append(f"{entry.name} ({_why_not(state, chosen.matches(state.labels))})")
    if not boards:
        raise ConnectionFailed(
            f"no board of the pool matches {selector!r}"
            + (f": {', '.join(others)}" if others else f" (the pool is empty; {_files()})")
        )
    return boards


def _why_not(state: pool.BoardState, matches: bool) -> str:
    if not matches:
        labels = ",".join(f"{k}={v}" for k, v in sorted(state.labels.items()))
        return f"labels {labels}" if labels else "no labels"
    return pool.describe_state(state)


def _files() -> str:
    read = [str(p) for p in pool.pool_files() if p.is_file()]
    return f"files read: {', '.join(read)}" if read else f"no {pool.POOL_FILE} found"


def close(boards: list[Board], keep: Board | None = None) -> None:
    """Close the channels of ``boards`` (all but ``keep``'s)."""
    for board in boards:
        if board is not keep:
            board.channel.close()


def take_any(
    boards: list[Board],
    *,
    purpose: Callable[[str], str],
    duration: float = 0,
    wait: float | None = None,
    hooks: bool = True,
    on_queued: Callable[[int], None] | None = None,
) -> tuple[Board, Lease]:
    """A granted lease on one of ``boards``: a free one at once, else the first one offered.

    ``purpose(board_name)`` is the purpose asked at each board; ``wait`` bounds the time in line
    (seconds; None: as long as it takes); ``on_queued`` hears the best place across the boards.
    """
    for board in sorted(boards, key=lambda b: not b.state.free):
        if not board.state.free:
            break
        try:
            return board, board.lease(purpose(board.name), duration, hooks).wait_for_grant(wait=0)
        except LeaseTimeout:  # someone was quicker: it is in line now, and the request left it
            continue
    return _Race(boards, purpose, duration, hooks, on_queued or (lambda position: None)).run(wait)


class _Race:
    """Wait in line at every board at once; the first offer accepted wins, the rest withdraw."""

    def __init__(
        self,
        boards: list[Board],
        purpose: Callable[[str], str],
        duration: float,
        hooks: bool,
        on_queued: Callable[[int], None],
    ):
        self.boards, self.on_queued = boards, on_queued
        self.leases = {board.name: board.lease(purpose(board.name), duration, hooks) for board in boards}
        self.positions: dict[str, int] = {}
        self.best = 0
        self.winner: Lease | None = None
        self.closed = False  # no more accepts: a winner, a timeout or an interrupt
        self.lock = threading.Lock()
        self.results: queue.Queue[tuple[Board, BaseException | None]] = queue.Queue()

    def run(self, wait: float | None) -> tuple[Board, Lease]:
        for board in self.boards:
            threading.Thread(
                target=self._wait_at, args=(board,), name=f"lease race {board.name}", daemon=True
            ).start()
        deadline = None if wait is None else time.monotonic() + wait
        errors, pending = [], len(self.boards)
        try:
            while pending:
                try:
                    board, error = self.results.get(
                        timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
                    )
                except queue.Empty:
                    if self._close():  # nobody accepted yet: the wait is over
                        raise LeaseTimeout(self._timed_out(wait)) from None
                    deadline = None  # an accepted offer: its hooks run, then the grant comes
                    continue
                pending -= 1
                if error is None:
                    return board, self.leases[board.name]
                if not isinstance(error, Withdrawn):
                    errors.append(f"{board.name}: {error}")
            raise JumpstarterError("no lease on any board: " + "; ".join(errors))
        except BaseException:
            self._close()
            for lease in self.leases.values():  # an interrupt: the board already won is given back too
                lease.withdraw()
            raise

    def _wait_at(self, board: Board) -> None:
        try:
            self.leases[board.name].wait_for_grant(
                None, lambda position: self._queued(board, position), self._offer
            )
            self.results.put((board, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            self.results.put((board, exc))

    def _offer(self, lease: Lease) -> bool:
        """Accept the first offer; withdraw from every other board at once."""
        with self.lock:
            if self.closed:
                return False
            self.closed, self.winner = True, lease
        for other in self.leases.values():
            if other is not lease:
                other.withdraw()
        return True

    def _close(self) -> bool:
        """No more accepts; True when none was given."""
        with self.lock:
            self.closed = True
            return self.winner is None

    def _queued(self, board: Board, position: int) -> None:
        with self.lock:
            self.positions[board.name] = position
            best = min(self.positions.values())
            if best == self.best:
                return
            self.best = best
        self.on_queued(best)

    def _timed_out(self, wait: float | None) -> str:
        where = [
            f"{name} {position}"
            for name, position in sorted(self.positions.items(), key=lambda item: item[1])
        ]
        places = f"; places in line: {', '.join(where)}" if where else ""
        return f"no lease on any of {len(self.boards)} boards within {format_duration(wait or 0)}{places}"
