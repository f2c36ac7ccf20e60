"""Names shared by the network drivers and their client."""

CLIENT = "jumpstarter_jupyter.drivers.network.client.NetworkClient"
UPSTREAM_CLIENT = "jumpstarter_driver_network.client.NetworkClient"  # what our network drivers report
UPSTREAM_CLIENTS = {UPSTREAM_CLIENT: CLIENT}  # upstream client classes -> ours (client.tree reads it)
