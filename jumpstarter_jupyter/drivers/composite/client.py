"""Client of composite drivers: just its children."""

from __future__ import annotations

from jumpstarter_jupyter.client import DriverClient


class CompositeClient(DriverClient):
    """A group of drivers; ``dut`` itself. Displaying it shows the whole device panel."""

    widget = "jumpstarter_jupyter.jupyter.panel.DevicePanel"
