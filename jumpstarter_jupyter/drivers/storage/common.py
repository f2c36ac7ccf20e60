"""Names shared by the storage mux drivers and their client."""

CLIENT = "jumpstarter_jupyter.drivers.storage.client.StorageMuxClient"
# upstream's flasher client offers `j storage flash/dump` on top of host/dut/off
UPSTREAM_CLIENT = "jumpstarter_driver_opendal.client.StorageMuxFlasherClient"
UPSTREAM_CLIENTS = {  # upstream client classes -> ours (client.tree reads it)
    "jumpstarter_driver_opendal.client.StorageMuxClient": CLIENT,
    UPSTREAM_CLIENT: CLIENT,
}
