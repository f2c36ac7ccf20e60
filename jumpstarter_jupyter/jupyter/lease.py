"""``LeaseWidget``: the board's lease at the top of its panel.

For the holder: who, what for, since when, a countdown, the exporter's expiry warning,
hand-over requests from others, and "extend" and "release". For a watcher: who holds the
board, "request hand-over", and "take the lease" once the board is free, which turns this
kernel's panel into the holder's without reconnecting (the connection takes the lease, and
every widget unlocks as the exporter reports the new holder).
"""

from __future__ import annotations

import traitlets

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.lease import BoardLease, Lease, held_leases, who_am_i
from jumpstarter_jupyter.durations import parse_duration
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.jupyter.widget import DriverWidget

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
    summarized = ("supported", "holder", "purpose")

    def summarize(self) -> str:
        """Who holds the board ("" for an exporter without leases)."""
        if not self.supported:
            return ""
        if not self.holder:
            return "lease: nobody holds the board"
        return f"lease: held by {self.holder}" + (f" ({self.purpose})" if self.purpose else "")

    def __init__(self, client: DriverClient):
        self._dismissed: set[float] = set()  # hand-over requests dismissed, by when they came
        self._lease = BoardLease()
        super().__init__(client, me=who_am_i())

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


def extend_leases(duration: str | float) -> list[Lease]:
    """Extend every lease this kernel holds to ``duration`` from now (the status bar's click)."""
    leases = held_leases()
    for lease in leases:
        lease.extend(parse_duration(duration))
    return leases
