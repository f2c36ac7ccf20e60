"""``CanWidget``: a live view of a CAN bus, in the style of cansniffer, with a frame log,
filters, a send form and a chart of one decoded signal.

The widget follows the bus with a reader of its own (``CanClient.subscribe``), so what a
cell's ``recv``/``expect`` takes is not taken from it. Every frame goes to a log file on the
kernel side, written with python-can's writer for its suffix (``.log``: candump's format), and
into per-ID statistics. The flusher (<= 25 times a second) sends the views one message with
what changed: table rows (at most ten times a second), at most ``LOG_BUDGET`` of the newest
frames (the rest are counted as not shown: the log file has them) and new chart points. Once
a second the whole table, the last frames and the chart go to synced traits, which a saved
notebook keeps and a late view starts from. A flood of any size thus costs the browser at
most ~26 messages a second.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

import can
import click
import traitlets

from jumpstarter_jupyter.drivers.can import dbc
from jumpstarter_jupyter.drivers.can.cli import parse_filter, parse_frame
from jumpstarter_jupyter.drivers.can.common import compile_filters, passes
from jumpstarter_jupyter.drivers.serial.widget import default_log_path
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.jupyter.watcher import WidgetWatcher
from jumpstarter_jupyter.jupyter.widget import DriverWidget

LOG_BUDGET = 40  # frames per flush to the views: <= 1000 frames/s; the log file gets all of them
RECENT = 20  # frames kept in the synced `recent` trait (saved with the notebook: keep it small)
CHART_POINTS = 600  # points of the chosen signal kept (one minute of a 10 Hz frame)
MAX_ROWS = 512  # IDs in the table; further IDs are counted, not shown
SYNC_PERIOD = 1.0  # seconds between syncs of the table, recent frames and chart traits
FOLLOWING = "following the bus"  # the label of the watcher's errors in the banner
ROW_PERIOD = 0.1  # seconds between table updates to the views (cansniffer's refresh): <= 10 a second
log = logging.getLogger("jumpstarter_jupyter.can")


class _Row:
    """cansniffer's view of one ID: last data, which bytes changed, period, count."""

    def __init__(self, msg: can.Message):
        self.key = _id_text(msg)
        self.count, self.period, self.last, self.data, self.changed = 0, None, None, b"", []

    def add(self, msg: can.Message) -> None:
        data = bytes(msg.data)
        self.changed = [i >= len(self.data) or self.data[i] != b for i, b in enumerate(data)]
        if self.last is not None:
            interval = msg.timestamp - self.last.timestamp
            self.period = interval if self.period is None else 0.8 * self.period + 0.2 * interval
        self.count, self.last, self.data = self.count + 1, msg, data

    def view(self, database: Any) -> dict:
        msg = self.last
        decoded = dbc.decode(database, msg) if database is not None else None
        return {
            "id": self.key,
            "dir": "RX" if msg.is_rx else "TX",
            "dlc": msg.dlc,
            "data": _hex(msg),
            "changed": self.changed,
            "count": self.count,
            "period": None if self.period is None else round(self.period * 1000, 1),
            "message": decoded.message if decoded else "",
            "signals": _signals_text(decoded),
        }


class CanWidget(DriverWidget):
    """``dut.can`` as a live table, frame log, send form and signal chart."""

    bundle = "can"
    rows = traitlets.List().tag(sync=True)  # the table: one dict per ID (see _Row.view)
    recent = traitlets.List().tag(sync=True)  # last frames: [seconds, id, dir, dlc, hex, decoded]
    chart = traitlets.List().tag(sync=True)  # [[seconds, value], ...] of `chart_signal`
    chart_signal = traitlets.Unicode("").tag(sync=True)  # "Message.Signal", chosen in the view
    chart_unit = traitlets.Unicode("").tag(sync=True)
    signals = traitlets.List().tag(sync=True)  # the database's messages and signals, for the picker
    dbc_path = traitlets.Unicode("").tag(sync=True)
    filters = traitlets.Unicode("").tag(sync=True)  # "ID:MASK ..." (hex) set in the view: what it shows
    paused = traitlets.Bool(False).tag(sync=True)  # the view stops updating; the log file goes on
    periodic = traitlets.List().tag(sync=True)  # running periodic sends: [{key, text}]
    counts = traitlets.Dict().tag(sync=True)  # frames (all logged), missed, shown, not_shown, ids
    log_path = traitlets.Unicode("").tag(sync=True)
    summarized = ("counts", "rows")

    def summarize(self) -> str:
        """The frame count, then the table a line per ID."""
        lines = [f"{self.counts.get('frames', 0)} frames"]
        for row in self.rows:
            decoded = f"  {row['message']}: {row['signals']}" if row.get("message") else ""
            lines.append(
                f"{row['id']}  {row['dir']}  [{row['dlc']}]  {row['data']}  x{row['count']}" + decoded
            )
        return "\n".join(lines)

    def __init__(self, client: Any, log_path: str | Path | None = None, **kwargs: Any):
        super().__init__(client, **kwargs)
        self.messages_sent = 0  # view messages (tests count them)
        self.frames_logged = 0
        self._frames_lock = threading.Lock()
        self._t0 = time.time()
        self._rows: dict[str, _Row] = {}
        self._dirty: set[str] = set()
        self._log_pending: deque[list] = deque()
        self._recent: deque[list] = deque(maxlen=RECENT)
        self._points: deque[list] = deque(maxlen=CHART_POINTS)
        self._new_points: list[list] = []
        self._counts = {"frames": 0, "missed": 0, "shown": 0, "not_shown": 0, "ids": 0}
        self._compiled: tuple = ()
        self._chart: tuple[int, str] | None = None  # (frame id, signal) being charted
        self._database: Any = None
        self._synced_at = self._rows_sent_at = 0.0
        self._changed_since_sync = True
        self._tasks: dict[str, tuple[Any, str]] = {}  # the form's periodic sends: key -> (task, text)
        self._task_ids = itertools.count(1)
        self._subscription: Any = None
        self._watcher: WidgetWatcher | None = None
        self._seq = 0
        self._writer = self._open_log(Path(log_path) if log_path else default_log_path(client.display_path))
        self.observe(self._on_filters, "filters")
        self.observe(self._on_chart_signal, "chart_signal")
        self.observe(lambda _change: self.poke(), "paused")
        client.database_listeners.append(self.poke)  # a cell's load_dbc() shows at once
        if client.streaming:
            self._subscription = client.subscribe(self._on_frames)  # now: a frame sent next is seen
            self._watcher = WidgetWatcher(self, FOLLOWING, self._follow)
        else:  # an upstream exporter: sending still works
            self.error = f"{client.display_path}: watching the bus needs a jumpstarter-jupyter exporter"
        self.poke()

    def _follow(self, watcher: WidgetWatcher) -> None:
        """Follow the bus until the subscription ends; the WidgetWatcher subscribes again after a failure
        (an exporter restart), so the widget goes on without a cell."""
        with self._frames_lock:
            subscription = self._subscription
        if subscription.wait(0):  # the last one ended: a new reader, from the bus's present
            subscription = self.client.subscribe(self._on_frames)
            with self._frames_lock:
                self._subscription = subscription
            if watcher.stopped.is_set():  # stop() ran while this subscribed
                subscription.close()
                return
            watcher.update()  # clears the error of the failed attempt
        subscription.wait()
        if subscription.failed is not None and not watcher.stopped.is_set():
            raise subscription.failed

    def _open_log(self, path: Path) -> can.io.generic.MessageWriter:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = str(path.resolve())
        return can.Logger(path)

    # the subscription's thread
    def _on_frames(self, missed: int, frames: list[can.Message]) -> None:
        """Every frame of the bus, in order: to the log file, then the view's state."""
        with self._frames_lock:
            if self._writer is None:
                return
            for msg in frames:
                self._writer.on_message_received(msg)
            self._writer.file.flush()  # current whenever a cell reads it
            self.frames_logged += len(frames)
            self._counts["frames"] += len(frames)
            self._counts["missed"] += missed
            for msg in frames:
                if passes(self._compiled, msg):
                    self._take_in(msg)
        self.poke()

    def _take_in(self, msg: can.Message) -> None:
        """Add a frame the filters pass to the table, the log view and the chart (lock held)."""
        key = _id_text(msg)
        row = self._rows.get(key)
        if row is None and len(self._rows) < MAX_ROWS:
            row = self._rows[key] = _Row(msg)
        if row is not None:
            row.add(msg)
            self._dirty.add(key)
        self._log_pending.append(msg)
        if len(self._log_pending) > LOG_BUDGET:
            self._log_pending.popleft()
            self._counts["not_shown"] += 1
        if self._chart is not None and msg.arbitration_id == self._chart[0] and self._database is not None:
            decoded = dbc.decode(self._database, msg)
            if decoded is not None and self._chart[1] in decoded.signals:
                point = [round(msg.timestamp - self._t0, 3), decoded[self._chart[1]]]
                self._points.append(point)
                self._new_points.append(point)
        self._changed_since_sync = True

    # the flusher's thread
    def flush(self) -> bool | None:
        """One message with what changed since the last; the traits once a second."""
        super().flush()
        self._follow_database()
        if self.paused:
            return None
        rows_due = time.monotonic() - self._rows_sent_at >= ROW_PERIOD
        with self._frames_lock:
            rows = (
                [self._rows[key].view(self._database) for key in sorted(self._dirty) if key in self._rows]
                if rows_due
                else []
            )
            if rows_due:
                self._dirty.clear()
            rows_owed = bool(self._dirty)
            frames = [self._entry(msg) for msg in self._log_pending]
            self._log_pending.clear()
            points, self._new_points = self._new_points[-CHART_POINTS:], []
            self._recent.extend(frames)
            self._counts["shown"] += len(frames)
            self._counts["ids"] = len(self._rows)
            counts = dict(self._counts)
        if (rows or frames or points) and self.comm is not None:
            self._seq += 1
            self.send(
                {
                    "type": "frames",
                    "seq": self._seq,
                    "rows": rows,
                    "log": frames,
                    "chart": points,
                    "counts": counts,
                }
            )
            self.messages_sent += 1
        if rows:
            self._rows_sent_at = time.monotonic()
        return self._sync_traits() or rows_owed

    def _sync_traits(self) -> bool:
        """Sync the table, recent frames and chart when due; True while a sync is owed."""
        if not self._changed_since_sync:
            return False
        if time.monotonic() - self._synced_at < SYNC_PERIOD:
            return True
        with self._frames_lock:
            rows = [self._rows[key].view(self._database) for key in sorted(self._rows)]
            recent, chart, counts = list(self._recent), list(self._points), dict(self._counts)
            self._changed_since_sync = False
        if self.comm is not None:
            with self.hold_sync():
                self.rows, self.recent, self.chart, self.counts = rows, recent, chart, counts
            self.messages_sent += 1
        self._synced_at = time.monotonic()
        return False

    def _entry(self, msg: can.Message) -> list:
        """One line of the frame log: [seconds, id, dir, dlc, hex, decoded]."""
        decoded = dbc.decode(self._database, msg) if self._database is not None else None
        return [
            round(msg.timestamp - self._t0, 3),
            _id_text(msg),
            "RX" if msg.is_rx else "TX",
            msg.dlc,
            _hex(msg),
            str(decoded) if decoded else "",
        ]

    def _follow_database(self) -> None:
        """Pick up a database loaded with ``dut.can.load_dbc()`` (or from the view)."""
        database = self.client.database
        if database is self._database:
            return
        with self._frames_lock:
            self._database = database
            self._dirty.update(self._rows)
            self._chart = self._resolve_chart(self.chart_signal)
            self._changed_since_sync = True
        with self.hold_sync():
            self.signals = dbc.signal_list(database) if database is not None else []
            self.dbc_path = self.client.database_path
            if not self.chart_signal and database is not None:
                self.chart_signal = _first_signal(database)

    # what the view sets
    def _on_filters(self, change: dict) -> None:
        try:
            compiled = compile_filters(_parse_filters(change["new"]))
        except ValueError as exc:
            self.update(error=f"filters: {exc}")
            return
        with self._frames_lock:
            self._compiled = compiled
            # the table shows only IDs that pass: the next flush syncs it whole
            for key in [k for k, row in self._rows.items() if not passes(compiled, row.last)]:
                del self._rows[key]
            self._changed_since_sync, self._synced_at = True, 0.0
        if self.error.startswith("filters:"):
            self.update(error="")
        self.poke()

    def _on_chart_signal(self, change: dict) -> None:
        with self._frames_lock:
            self._chart = self._resolve_chart(change["new"])
            self._points.clear()
            self._new_points.clear()
            self._changed_since_sync = True
        self.poke()

    def _resolve_chart(self, name: str) -> tuple[int, str] | None:
        """``"Status.Temperature"`` as (frame id, signal); sets the unit shown on the axis."""
        message, _, signal = name.partition(".")
        if self._database is None or not signal:
            return None
        for entry in dbc.signal_list(self._database):
            for each in entry["signals"]:
                if entry["name"] == message and each["name"] == signal:
                    self.update(chart_unit=each["unit"])
                    return entry["id"], signal
        return None

    # front-end actions (worker threads)
    def action_send(self, ident: str, data: str, extended: bool = False, remote: bool = False) -> None:
        """Send one frame from the form."""
        self.client.send(form_frame(ident, data, extended, remote))

    def action_send_periodic(
        self, ident: str, data: str, extended: bool, remote: bool, period: float
    ) -> None:
        """Start sending the form's frame every ``period`` seconds (on the exporter)."""
        if not float(period) > 0:
            raise ValueError(f"period must be > 0 seconds, got {period}")
        msg = form_frame(ident, data, extended, remote)
        task = self.client.send_periodic(msg, float(period))
        text = f"{_id_text(msg)}#{'R' if remote else bytes(msg.data).hex().upper()} every {float(period):g} s"
        self._tasks[str(next(self._task_ids))] = (task, text)
        self._show_tasks()

    def action_stop_periodic(self, key: str) -> None:
        """Stop one periodic send started from the form."""
        task, _text = self._tasks.pop(key, (None, ""))
        if task is not None:
            task.stop()
        self._show_tasks()

    def _show_tasks(self) -> None:
        # from the dict, not the trait: two clicks on worker threads must not lose each other's task
        self.update(periodic=[{"key": key, "text": text} for key, (_task, text) in list(self._tasks.items())])

    def action_load_dbc(self, path: str) -> None:
        """Load a CAN database (path on the kernel's side) for the table, log and chart."""
        self.client.load_dbc(path)

    def stop(self) -> None:
        """Stop following the bus and the form's periodic sends; close the log file."""
        if self.poke in self.client.database_listeners:
            self.client.database_listeners.remove(self.poke)
        if self._watcher is not None:
            self._watcher.stop()
        with self._frames_lock:
            subscription = self._subscription
        if subscription is not None:
            subscription.close()
        for task, _text in self._tasks.values():
            try:
                task.stop()
            except JumpstarterError as exc:  # the exporter is gone: its tasks went with it
                log.debug("%s: stopping a periodic send: %s", self.path, exc)
        self._tasks.clear()
        with self._frames_lock:
            writer, self._writer = self._writer, None
        if writer is not None:
            writer.stop()


def form_frame(ident: str, data: str, extended: bool = False, remote: bool = False) -> can.Message:
    """The send form's fields as a frame: ID and data in hex (spaces allowed)."""
    try:
        number = int(str(ident).strip(), 16)
    except ValueError:
        raise ValueError(f"ID {ident!r} is not a hex number") from None
    limit = 0x1FFFFFFF if extended else 0x7FF
    if not 0 <= number <= limit:
        raise ValueError(
            f"ID {number:X} is out of range: {'an extended' if extended else 'a standard'} ID is at "
            f"most {limit:X}"
        )
    head = f"{number:08X}" if extended else f"{number:03X}"
    return parse_frame(f"{head}#R" if remote else f"{head}#{''.join(str(data).split())}")


def _parse_filters(text: str) -> list[dict]:
    """``"100:7FF 600:7F0"`` (spaces or commas between; candump's ID:MASK) as python-can filters."""
    try:
        return [parse_filter(item) for item in text.replace(",", " ").split()]
    except click.BadParameter as exc:
        raise ValueError(exc.message) from None


def _first_signal(database: Any) -> str:
    for entry in dbc.signal_list(database):
        return f"{entry['name']}.{entry['signals'][0]['name']}"
    return ""


def _id_text(msg: can.Message) -> str:
    return f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"


def _hex(msg: can.Message) -> str:
    return "remote request" if msg.is_remote_frame else " ".join(f"{b:02X}" for b in msg.data)


def _signals_text(decoded: dbc.Decoded | None) -> str:
    return " ".join(f"{name}={decoded.text(name)}" for name in decoded.signals) if decoded else ""
