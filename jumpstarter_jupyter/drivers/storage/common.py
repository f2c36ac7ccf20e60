"""Names shared by the storage mux drivers and their client: client classes, image suffixes,
the refusal error."""

from __future__ import annotations

CLIENT = "jumpstarter_jupyter.drivers.storage.client.StorageMuxClient"
# upstream's flasher client offers `j storage flash/dump` on top of host/dut/off
UPSTREAM_CLIENT = "jumpstarter_driver_opendal.client.StorageMuxFlasherClient"
UPSTREAM_CLIENTS = {  # upstream client classes -> ours (client.tree reads it)
    "jumpstarter_driver_opendal.client.StorageMuxClient": CLIENT,
    UPSTREAM_CLIENT: CLIENT,
}

# images are sent as they are on disk and decompressed by the exporter (fewer bytes on the wire)
ENCODING_FOR_SUFFIX = {".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".bz2": "bz2"}


class StorageRefused(RuntimeError):
    """A block device that must not be written: mounted, the root filesystem, swap, a fixed
    disk, too small. The message names the device and the reason."""
