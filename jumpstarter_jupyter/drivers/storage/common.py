"""What the storage drivers and clients share: image suffixes, refusal errors, flash figures."""

from __future__ import annotations

# images are sent as they are on disk and decompressed by the exporter (fewer bytes on the wire)
ENCODING_FOR_SUFFIX = {".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".bz2": "bz2"}


class StorageRefused(RuntimeError):
    """A block device that must not be written: mounted, the root filesystem, swap, a fixed
    disk, too small. The message names the device and the reason."""
