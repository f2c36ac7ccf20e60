"""Names shared by the gpio drivers, client and command line."""

from __future__ import annotations

EDGES = ("rising", "falling")  # upstream's edge_type values for wait_for_edge
ACTIVE, INACTIVE = 1, 0
