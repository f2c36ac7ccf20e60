"""``LeaseWidget``: the board's lease at the top of its panel.

For the holder: who, what for, since when, a countdown, the exporter's expiry warning,
hand-over requests from others, and "extend" and "release". For a watcher: who holds the
board, "request hand-over", and "take the lease" once the board is free, which turns this
kernel's panel into the holder's without reconnecting (the connection takes the lease, and
every widget unlocks as the exporter reports the new holder).

A board leased from an upstream controller (``%jmp connect --controller``) shows the
controller's lease instead: the Client object holding it, the exporter, the time left to its
effective end (``GetLease``, polled), and why it ended; "release" deletes it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import anywidget
import traitlets

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.controller import ControllerLease, LeaseState
from jumpstarter_jupyter.client.lease import BoardLease, Lease, held_leases, who_am_i
from jumpstarter_jupyter.durations import parse_duration
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.jupyter.widget import DriverWidget, front_end_message, static_source

TAKE_WAIT = 60.0  # seconds "take the lease" waits in line when someone was faster


class LeaseWidget(DriverWidget):
    """The lease bar of a board's panel (one per connection, shown above the drivers)."""

    bundle = "lease"
    supported = traitlets.Bool(False).tag(sync=True)  # False: an exporter without leases
    required = traitlets.Bool(False).tag(sync=True)
    holder = traitlets.Unicode("").tag(sync=True)
    purpose = traitlets.Unicode("").tag(sync=True)
    since = traitlets.Float(0).tag(sync=True)  # unix seconds
    remaining = traitlets.Float(0).tag(sync=True)  # seconds left when this value was sent
    mine = traitlets.Bool(False).tag(sync=True)
    queue = traitlets.List(traitlets.Unicode()).tag(sync=True)
    me = traitlets.Unicode("").tag(sync=True)
    warning = traitlets.Unicode("").tag(sync=True)  # the exporter's expiry warning; why a lease ended
    notices = traitlets.List(traitlets.Dict()).tag(sync=True)  # hand-over requests: {text, at}
    info = traitlets.Unicode("").tag(sync=True)  # the answer to this panel's last action
    # a controller's lease (LeaseState.as_dict() plus "remaining" seconds when sent); {}: none
    controller = traitlets.Dict({}).tag(sync=True)
    summarized = ("supported", "holder", "purpose", "controller")

    def summarize(self) -> str:
        """Who holds the board ("" for an exporter without leases)."""
        if self.controller:
            return controller_summary(self.controller)
        if not self.supported:
            return ""
        if not self.holder:
            return "lease: nobody holds the board"
        return f"lease: held by {self.holder}" + (f" ({self.purpose})" if self.purpose else "")

    def __init__(self, client: DriverClient):
        self._dismissed: set[float] = set()  # hand-over requests dismissed, by when they came
        self._lease = BoardLease()
        super().__init__(client, me=who_am_i())
        controller_lease = client.connection.controller_lease
        self._unwatch_controller = (
            controller_lease.watch(self._on_controller_lease) if controller_lease is not None else None
        )

    def _on_controller_lease(self, state: LeaseState) -> None:
        self.update(controller=controller_trait(state))

    def stop(self) -> None:
        if self.__dict__.get("_unwatch_controller") is not None:
            self._unwatch_controller()

    def on_lease(self, lease: BoardLease, event: object) -> None:
        self._lease = lease
        warning = lease.warning or (f"your lease ended: {lease.ended}" if lease.ended else "")
        self.update(
            supported=lease.supported,
            required=lease.required,
            holder=lease.holder,
            purpose=lease.purpose,
            since=lease.since,
            remaining=lease.remaining,
            mine=lease.mine,
            queue=list(lease.queue),
            warning=warning,
            notices=self._notices(),
        )

    def _notices(self) -> list[dict]:
        return [{"text": text, "at": at} for text, at in self._lease.requests if at not in self._dismissed]

    # what the bar's buttons do (worker threads; failures show in the bar's banner)
    def action_extend(self, duration: str | float) -> None:
        lease = self.client.connection.lease
        if lease is None or not lease.active:
            raise JumpstarterError("this kernel holds no lease to extend")
        lease.extend(parse_duration(duration))
        self.update(info=f"extended: {lease!r}")

    def action_release(self) -> None:
        controller_lease = self.client.connection.controller_lease
        if controller_lease is not None:
            controller_lease.release()
            self.update(info="released: the board is free; connect again for a new lease")
            return
        self.client.connection.release_lease()
        self.update(info="released: this panel now watches")

    def action_request_handover(self) -> None:
        self.update(info=self.client.connection.request_handover())

    def action_take(self) -> None:
        self.update(info="taking the lease…")
        self.client.connection.acquire(
            wait=TAKE_WAIT,
            **self.client.connection.lease_options,
            on_queued=lambda position: self.update(info=f"number {position} in line…"),
        )
        self.update(info="")

    def action_dismiss(self, at: float) -> None:
        self._dismissed.add(at)
        self.update(notices=self._notices())


class ControllerLeaseWidget(anywidget.AnyWidget):
    """A controller's lease from the moment ``%jmp connect --controller`` asks for it: why it waits
    (the ``Pending`` reason, as the controller changes it), then who holds which exporter and the
    time left, then why it ended. Drawn by the lease bar's front end; "release" deletes the lease.
    It needs no connection, so it shows the wait before there is a board to connect to."""

    path = traitlets.Unicode("").tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    locked = traitlets.Unicode("").tag(sync=True)
    summary = traitlets.Unicode("").tag(sync=True)
    controller = traitlets.Dict({}).tag(sync=True)

    def __new__(cls, *args: Any, **kwargs: Any):
        if "_esm" not in cls.__dict__:
            cls._esm = static_source("loaders", "lease")
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, lease: ControllerLease):
        super().__init__(path=f"controller lease ({lease.where})")
        self.lease = lease
        self.on_msg(self._on_message)
        self._show(LeaseState(name="", controller=lease.where, selector=lease.selector))  # not asked yet
        self._unwatch = lease.watch(self._show)

    def _show(self, state: LeaseState) -> None:
        lease = controller_trait(state)
        if self.comm is not None:
            with self.hold_sync():
                self.controller, self.summary = lease, controller_summary(lease)

    def _on_message(self, _widget: Any, content: Any, _buffers: list) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "bundle":
            self.send(front_end_message("lease"))
        elif content.get("action") == "release":  # DeleteLease: off the comm thread
            threading.Thread(target=self.lease.release, name="jumpstarter-release", daemon=True).start()

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict, dict] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if not bundle:
            return bundle
        data, metadata = bundle  # text/plain: what viewers without widgets show
        return {**data, "text/plain": self.summary}, metadata

    def close(self) -> None:
        """Stop following the lease and close the widget (the lease itself stays)."""
        self.__dict__.get("_unwatch", lambda: None)()
        super().close()


def controller_trait(state: LeaseState) -> dict[str, Any]:
    """The ``controller`` trait of a lease bar: the state and the seconds left when sent."""
    remaining = max(0.0, state.end - time.time()) if state.state == "ready" else 0.0
    return {**state.as_dict(), "remaining": remaining}


def controller_summary(lease: dict) -> str:
    """A controller lease's state as one line of text (what a saved notebook shows)."""
    where = f"lease {lease['name']} at {lease['controller']}" if lease["name"] else lease["controller"]
    if lease["state"] == "ready":
        return f"{where}: client {lease['holder']} holds {lease['exporter']}"
    if lease["state"] == "ended":
        return f"{where} ended ({lease['reason']}): connect again for a new one"
    why = f"{lease['reason']}: {lease['message']}" if lease["message"] else lease["reason"]
    return f"{where}: waiting for an exporter matching {lease['selector']}" + (f" ({why})" if why else "")


def extend_leases(duration: str | float) -> list[Lease]:
    """Extend every lease this kernel holds to ``duration`` from now (the status bar's click)."""
    leases = held_leases()
    for lease in leases:
        lease.extend(parse_duration(duration))
    return leases
