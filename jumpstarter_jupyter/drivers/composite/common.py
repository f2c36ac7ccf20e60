"""Names shared by the composite driver and its client."""

CLIENT = "jumpstarter_jupyter.drivers.composite.client.CompositeClient"
UPSTREAM_CLIENT = "jumpstarter_driver_composite.client.CompositeClient"  # what our composites report
UPSTREAM_CLIENTS = {UPSTREAM_CLIENT: CLIENT}  # upstream client classes -> ours (client.tree reads it)
