"""Block devices as the kernel shows them: what a disk is, whether it is safe to write, where a
mux's card is.

Everything is read from ``/proc/self/mountinfo``, ``/proc/swaps`` and sysfs under a ``root``
directory (``/`` on a lab host), so tests run the same code on fixture trees and never look
at this machine's disks. No udev is needed: these hosts often run none.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from jumpstarter_jupyter.drivers.storage.common import StorageRefused

SECTOR = 512  # /sys/block/*/size counts 512-byte sectors whatever the device's block size
POLL = 0.1  # seconds between looks at sysfs while a card appears


@dataclass(frozen=True)
class Disk:
    """A whole block device: ``path`` as configured, its kernel ``name``, its sysfs directory."""

    path: str
    name: str
    sysfs: Path
    root: Path

    @property
    def size(self) -> int:
        """Capacity in bytes (0: no medium, e.g. a card reader without a card)."""
        return int(_read(self.sysfs / "size") or 0) * SECTOR

    @property
    def partitions(self) -> list[str]:
        """Kernel names of its partitions (``sdb1``, ``loop3p1``)."""
        return sorted(p.name for p in self.sysfs.iterdir() if (p / "partition").exists())

    def directory(self, name: str) -> Path:
        """The sysfs directory of the disk (its own ``name``) or of one of its partitions."""
        return self.sysfs if name == self.name else self.sysfs / name

    def numbers(self) -> dict[str, str]:
        """``{"major:minor": name}`` of the disk and its partitions, as mountinfo lists them."""
        return {_read(self.directory(name) / "dev"): name for name in [self.name, *self.partitions]}

    @property
    def transport(self) -> str:
        """``"loop"``, ``"usb"``, ``"removable"`` or ``"fixed"``: what the refusal of fixed disks looks at."""
        real = str(self.sysfs.resolve())
        if self.name.startswith("loop") or "/virtual/block/loop" in real:
            return "loop"
        if "/usb" in real:
            return "usb"
        return "removable" if _read(self.sysfs / "removable") == "1" else "fixed"


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def inspect(path: str, root: str | os.PathLike = "/") -> Disk:
    """The whole disk at ``path`` (symlinks such as ``/dev/disk/by-id/…`` followed).

    Raises :class:`StorageRefused` if it is no block device the kernel knows, or a partition.
    """
    root = Path(root)
    name = Path(os.path.realpath(root / path.lstrip("/"))).name
    sysfs = root / "sys" / "class" / "block" / name
    if not sysfs.exists():
        raise StorageRefused(f"{path}: not a block device the kernel knows (no /sys/class/block/{name})")
    if (sysfs / "partition").exists():
        raise StorageRefused(f"refusing to write {path} ({name}): it is a partition; give the whole disk")
    return Disk(path, name, sysfs, root)


def check_writable(disk: Disk, image_size: int | None, allow_fixed: bool = False) -> None:
    """Raise :class:`StorageRefused` naming the device and the reason if writing ``disk`` could
    destroy something: it holds the root filesystem or swap, it or a partition is mounted or
    held by another device (LVM, RAID), it is a fixed disk (unless ``allow_fixed``), it has no
    medium, or it is smaller than ``image_size`` bytes (None: not known in advance)."""
    reason = _refusal(disk, image_size, allow_fixed)
    if reason:
        raise StorageRefused(f"refusing to write {disk.path} ({disk.name}): {reason}")


def _refusal(disk: Disk, image_size: int | None, allow_fixed: bool) -> str | None:
    numbers = disk.numbers()
    mounts = list(_mounts(disk.root))
    for number, point, source in mounts:
        if point == "/" and _on_disk(number, source, numbers, disk.root):
            return f"it holds the root filesystem ({source} on /)"
    for swap in _swaps(disk.root):
        if Path(os.path.realpath(disk.root / swap.lstrip("/"))).name in numbers.values():
            return f"it holds swap ({swap})"
    mounted = mounted_from(disk)
    if mounted:
        return f"it is mounted ({mounted}); unmount it first"
    for name in [disk.name, *disk.partitions]:
        holders = sorted(p.name for p in (disk.directory(name) / "holders").glob("*"))
        if holders:
            return f"{name} is in use by {', '.join(holders)} (device-mapper, LVM or RAID)"
    if disk.transport == "fixed" and not allow_fixed:
        return (
            "it is a fixed disk (not removable, not on USB, not a loop device); "
            "set allow_fixed: true to allow it"
        )
    if disk.size == 0:
        return "it has no medium (size 0): is the card inserted?"
    if image_size is not None and disk.size < image_size:
        return f"it is smaller than the image ({disk.size} bytes < {image_size} bytes)"
    return None


def mounted_from(disk: Disk) -> str | None:
    """``"/dev/sdb1 on /media/card"`` for the first mount of the disk or a partition; None if none."""
    numbers = disk.numbers()
    for number, point, source in _mounts(disk.root):
        if _on_disk(number, source, numbers, disk.root):
            return f"{source} on {point}"
    return None


def _on_disk(number: str, source: str, numbers: dict[str, str], root: Path) -> bool:
    # btrfs and others report an anonymous major:minor: the mount's source names the device too
    if number in numbers:
        return True
    return (
        source.startswith("/dev/")
        and Path(os.path.realpath(root / source.lstrip("/"))).name in numbers.values()
    )


def _mounts(root: Path):
    """``(major:minor, mount point, source)`` of each line of mountinfo."""
    for line in _read(root / "proc" / "self" / "mountinfo").splitlines():
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        after = line.split(" - ", 1)[1].split()
        yield fields[2], _unescape(fields[4]), _unescape(after[1]) if len(after) > 1 else ""


def _swaps(root: Path) -> list[str]:
    lines = _read(root / "proc" / "swaps").splitlines()[1:]
    return [_unescape(line.split()[0]) for line in lines if line.strip()]


def _unescape(field: str) -> str:
    """mountinfo and swaps write space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def usb_device_dir(bus: int, ports: tuple[int, ...], root: str | os.PathLike = "/") -> Path:
    """sysfs directory of the USB device at ``bus`` and port path ``ports`` (``1-1.4``)."""
    return Path(root) / "sys" / "bus" / "usb" / "devices" / f"{bus}-{'.'.join(map(str, ports))}"


def disks_under(usb_dir: Path, root: str | os.PathLike = "/") -> list[str]:
    """``/dev/NAME`` of every disk whose sysfs device lies under the USB device ``usb_dir``."""
    block = Path(root) / "sys" / "block"
    if not usb_dir.exists() or not block.exists():
        return []
    top = str(usb_dir.resolve()) + os.sep
    found = []
    for entry in sorted(block.iterdir()):
        if str(entry.resolve()).startswith(top):
            name = dict(line.split("=", 1) for line in _read(entry / "uevent").splitlines() if "=" in line)
            found.append("/dev/" + name.get("DEVNAME", entry.name))
    return found


def wait_for_disk(
    find: Callable[[], list[str]],
    where: str,
    timeout: float,
    leeway: float,
    root: str | os.PathLike = "/",
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Wait up to ``timeout`` s for ``find()`` to name exactly one disk with a medium.

    A card that was not there at the first look must then stay for ``leeway`` s (it settles
    after a switch). More than one disk is an error naming them: never guess.
    """
    deadline = time.monotonic() + timeout
    settled_at = None  # when a card that just appeared counts as settled
    first = True
    while True:
        disks = find()
        if len(disks) > 1:
            raise StorageRefused(f"{where}: several disks found ({', '.join(disks)}); set storage_device")
        if disks and inspect(disks[0], root).size > 0:
            if first:  # already there before we looked: nothing to settle
                return disks[0]
            settled_at = settled_at or time.monotonic() + leeway
            if time.monotonic() >= settled_at:
                return disks[0]
        else:
            settled_at = None
            if time.monotonic() > deadline:
                state = f"{disks[0]} has no medium" if disks else "no block device appeared"
                raise TimeoutError(f"{where}: {state} within storage_timeout={timeout:g} s")
        first = False
        sleep(POLL)
