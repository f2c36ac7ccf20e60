"""Names shared by the gpio drivers, client and command line."""

from __future__ import annotations

EDGES = ("rising", "falling")  # upstream's edge_type values for wait_for_edge
ACTIVE, INACTIVE = 1, 0

OUTPUT_CLIENT = "jumpstarter_jupyter.drivers.gpio.client.DigitalOutputClient"
INPUT_CLIENT = "jumpstarter_jupyter.drivers.gpio.client.DigitalInputClient"
UPSTREAM_OUTPUT_CLIENT = "jumpstarter_driver_gpiod.client.DigitalOutputClient"  # what our outputs report
UPSTREAM_INPUT_CLIENT = "jumpstarter_driver_gpiod.client.DigitalInputClient"  # what our inputs report
UPSTREAM_CLIENTS = {  # upstream client classes -> ours (client.tree reads it)
    UPSTREAM_OUTPUT_CLIENT: OUTPUT_CLIENT,
    UPSTREAM_INPUT_CLIENT: INPUT_CLIENT,
}
