"""The widget base every interface widget subclasses.

Contract for an interface widget (``drivers/<interface>/widget.py``)::

    class PowerWidget(DriverWidget):
        bundle = "power"                       # front end: labextension/src/widgets/power.js
        state = traitlets.Unicode("").tag(sync=True)

        def __init__(self, client):
            super().__init__(client)
            self.update(state="on")           # from any thread: batched, <= 25 flushes/s

        def action_on(self):                  # front end: model.send({action: "on", args: []})
            self.client.on()                  # runs on a worker thread; errors land in `error`

* ``for_client(client)`` returns the one widget of that client (made on first use), so
  displaying ``dut.power`` twice shows two views of one model: one owner, one saved state.
* ``bundle`` names the front end ``labextension/src/widgets/<bundle>.js``. anywidget syncs
  ``_esm`` as a trait and saves it with the notebook, so ``_esm`` is only a loader of a few KB
  (``static/loaders/<bundle>.js``): it imports the front end the JupyterLab extension serves,
  or else asks this widget for it (``{"type": "bundle"}``; the reply carries
  ``static/widgets/<bundle>.js``), and shows the saved traits as text until then.
* ``error`` (synced) is drawn by the front end as a banner; ``""`` hides it.
* ``summary`` (synced) is the widget's state as text, made here by ``summarize()`` whenever a
  trait it reads (``summarized``) changes: what a saved notebook shows where no front end loads
  (nbconvert's HTML, nbviewer, the docs) and the widget's ``text/plain``.
* ``locked`` (synced) says why this kernel may not control the board (``"held by alice@lab
  (bring-up)"``), ``""`` when it may. It follows the board's lease; the front end disables its
  controls (not those marked ``data-view-only``) with the reason as their tooltip.
* ``update(**traits)`` is the only way background threads change traits: values are merged
  and applied by the widget's own flusher thread at most ``RATE`` times a second, so a flood
  never exceeds Jupyter Server's IOPub rate limit. Subclasses with other high-rate output
  (serial bytes) override ``flush()`` and call ``poke()`` when they have something to send.
* A front-end message ``{"action": name, "args": [...]}`` runs ``action_<name>(*args)`` on a
  worker thread (never on the comm thread: a click must not wait behind a running cell or a
  slow call, and a failure must not raise a traceback into the widget). Other messages go to
  ``on_message(content, buffers)`` on the comm thread and must return quickly.
* Widgets call only public client methods; never print()/display() from a thread.
* ``close()`` stops the flusher; subclasses stop their own background work in ``stop()``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import anywidget
import traitlets

from jumpstarter_jupyter import __version__
from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.lease import BoardLease

STATIC = Path(__file__).parent / "static"
# flushes per second per widget: under the ~30 we promise with margin, far below Jupyter
# Server's 1000 messages/s
RATE = 25.0

# Shared by every widget: calls are I/O-bound gRPC requests, and gRPC channels are thread-safe.
_workers = ThreadPoolExecutor(max_workers=8, thread_name_prefix="jumpstarter-widget")


@functools.cache
def static_source(kind: str, name: str) -> str:
    """The built ES module ``static/<kind>/<name>.js`` (``loaders`` or ``widgets``).

    A clear error when the front-end build has not run (a source tree without ``make install``).
    """
    path = STATIC / kind / f"{name}.js"
    if not path.is_file():
        raise FileNotFoundError(
            f"widget front end {path} is missing: build it with `make install` "
            f"(npm ci + npm run build in labextension/)"
        )
    return path.read_text(encoding="utf-8")


def front_end_message(bundle: str) -> dict[str, str]:
    """The reply to a loader's ``{"type": "bundle"}``: the front end ``static/widgets/<bundle>.js``."""
    return {
        "type": "bundle",
        "name": bundle,
        "version": __version__,
        "source": static_source("widgets", bundle),
    }


class Batcher:
    """Run ``flush`` on one thread, at most ``rate`` times a second, whenever poked.

    ``poke()`` is cheap and safe from any thread; pokes arriving while a flush waits for its
    slot coalesce into one flush. ``flush`` returns True to be called again later (work it
    deferred on purpose, e.g. a slower-rate trait).
    """

    def __init__(
        self, flush: Callable[[], bool | None], rate: float = RATE, name: str = "jumpstarter-batcher"
    ):
        self._flush, self._interval, self._name = flush, 1.0 / rate, name
        self._wake, self._stopped = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def poke(self) -> None:
        """Ask for a flush soon (starts the thread on first use)."""
        with self._lock:
            if self._stopped.is_set():
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        self._wake.set()

    def close(self) -> None:
        """Stop the thread after a last flush of what is pending."""
        with self._lock:
            self._stopped.set()
            thread = self._thread
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            again = self._flush()
            if self._stopped.is_set():
                return
            # the rate limit itself: the next flush waits for its slot (close() cuts it short)
            self._stopped.wait(self._interval)
            if again:
                self._wake.set()


def _keep_senders_subshell(comm: Any) -> None:
    """Handle a front end's messages on the kernel subshell it sent them to.

    ipykernel 7 routes an incoming comm message to the subshell the comm last published from
    (meant for request/reply comms). Our widgets publish from their flusher thread, which
    counts as the main shell, so an emergency click sent on a subshell would wait behind the
    running cell. Our messages are never replies: keep the sender's choice.
    """
    if comm is not None and hasattr(comm, "_reply_subshell_for"):
        comm._reply_subshell_for = lambda _data, default: default


class DriverWidget(anywidget.AnyWidget):
    """Base of every interface widget: one client, a few synced traits, one ES module."""

    bundle: ClassVar[str]
    summarized: ClassVar[tuple[str, ...]] = ()  # the traits summarize() reads
    error = traitlets.Unicode("").tag(sync=True)
    path = traitlets.Unicode("").tag(sync=True)
    locked = traitlets.Unicode("").tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)  # summarize()'s text of the saved state

    # (class, client) -> its widget, until the widget is closed
    _instances: ClassVar[dict[tuple[type, DriverClient], DriverWidget]] = {}
    # re-entered: a widget whose __init__ raises inside for_client() closes itself under it
    _instances_lock: ClassVar[threading.RLock] = threading.RLock()

    def __new__(cls, *args: Any, **kwargs: Any):
        # checked before an object exists: ipywidgets' __del__ would close a half-built one
        if "_esm" not in cls.__dict__:
            cls._esm = static_source("loaders", cls.bundle)
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, client: DriverClient, **kwargs: Any):
        # anywidget's add_traits() swaps in a per-instance subclass, so remember the class now
        self._key = (type(self), client)
        self.client = client
        self._pending: dict[str, Any] = {}
        self._pending_lock = threading.Lock()
        self._batcher = Batcher(self.flush, name=f"jumpstarter-widget {client.display_path}")
        super().__init__(path=client.display_path, **kwargs)
        self.on_msg(self._dispatch)
        _keep_senders_subshell(self.comm)
        self.summary = self.summarize()
        if self.summarized:  # in the same message as the change: a saved notebook holds both
            self.observe(self._summarize_again, names=list(self.summarized))
        self._unwatch_lease = client.connection.watch_lease(self.on_lease)

    def on_lease(self, lease: BoardLease, event: Any) -> None:
        """The board's lease changed (background thread): lock or unlock the controls."""
        self.update(locked=lease.locked)

    def summarize(self) -> str:
        """The state the synced traits hold, as text (subclasses: a few lines)."""
        return ""

    def _summarize_again(self, _change: Any) -> None:
        summary = self.summarize()
        if summary != self.summary:
            self.summary = summary

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if not bundle:
            return bundle
        data, metadata = bundle  # text/plain: what viewers without widgets show, as the fallback draws it
        error = f"error: {self.error}" if self.error else ""
        text = "\n".join(filter(None, [f"{self.path} (text view)", error, self.summarize()]))
        return {**data, "text/plain": text}, metadata

    @classmethod
    def for_client(cls, client: DriverClient) -> DriverWidget:
        """The widget showing ``client``: the same instance every time it is displayed."""
        with cls._instances_lock:
            widget = cls._instances.get((cls, client))
            if widget is None:
                widget = cls._instances[(cls, client)] = cls(client)
            return widget

    # updates from any thread
    def update(self, **traits: Any) -> None:
        """Set synced traits from any thread; applied together by the flusher, latest value wins."""
        with self._pending_lock:
            self._pending.update(traits)
        self._batcher.poke()

    def poke(self) -> None:
        """Ask for a ``flush()`` soon (for subclasses with their own pending output)."""
        self._batcher.poke()

    def flush(self) -> bool | None:
        """Apply pending trait values as one message; subclasses extend it. Runs on the flusher thread."""
        with self._pending_lock:
            pending, self._pending = self._pending, {}
        if pending and self.comm is not None:
            with self.hold_sync():
                for name, value in pending.items():
                    setattr(self, name, value)
        return None

    # calls from the front end
    def submit(self, label: str, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on a worker thread; its failure is shown as ``label: message``."""
        _workers.submit(self._guarded, label, fn, args)

    def _guarded(self, label: str, fn: Callable[..., Any], args: tuple) -> None:
        try:
            fn(*args)
        except Exception as exc:  # shown in the widget instead of a traceback nobody sees
            self.update(error=f"{label}: {exc}")
        else:
            if self.error.startswith(f"{label}:"):
                self.update(error="")

    def _dispatch(self, _widget: Any, content: Any, buffers: list) -> None:
        if isinstance(content, dict) and content.get("type") == "bundle":
            self.send_front_end()
        elif isinstance(content, dict) and "action" in content:
            name, args = str(content["action"]), content.get("args") or []
            handler = getattr(self, f"action_{name}", None)
            if handler is None or not isinstance(args, list):
                self.update(error=f"{self.path}: the widget sent an unknown action {name!r}")
                return
            self.submit(name, handler, *args)
        else:
            self.on_message(content, buffers)

    def send_front_end(self) -> None:
        """Send the views this widget's front end, for a loader that finds no JupyterLab extension."""
        self.send(front_end_message(self.bundle))

    def on_message(self, content: Any, buffers: list) -> None:
        """Handle a front-end message that is not an action (comm thread: return quickly)."""

    # lifetime
    def stop(self) -> None:
        """Stop this widget's background work (subclasses: unsubscribe, close streams)."""

    def close(self) -> None:
        """Stop background work and close the widget's comm."""
        with self._instances_lock:
            if self._instances.get(self._key) is self:
                del self._instances[self._key]
        self.__dict__.get("_unwatch_lease", lambda: None)()
        self.stop()
        self._batcher.close()
        super().close()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A widget whose __init__ raises after the base opened its comm would stay registered
        # with ipywidgets, comm open, forever: close it, then let the error go on.
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _closing_on_failure(cls.__dict__["__init__"])

    def close_half_built(self) -> None:
        """Close a widget whose ``__init__`` raised: its ``stop()`` may miss what was never made."""
        try:
            self.close()
        except AttributeError:
            anywidget.AnyWidget.close(self)

    def __del__(self) -> None:
        # ipywidgets closes garbage widgets; one never fully built must not raise from here
        self.close_half_built()


def _closing_on_failure(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def guarded(self: DriverWidget, *args: Any, **kwargs: Any) -> None:
        try:
            init(self, *args, **kwargs)
        except BaseException:
            self.close_half_built()
            raise

    return guarded
