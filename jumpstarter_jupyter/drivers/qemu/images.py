"""Guest artefacts for the QEMU board, built from Debian packages only.

For each architecture: the Debian cloud kernel (downloaded and unpacked, never installed), a
busybox initramfs that loads the virtio modules and switches to ``root=/dev/vda`` when given,
and two ext4 "SD card" images A and B (different banner and web page) made by ``mke2fs -d``.
They live in a cache outside the repository; a second build finds them and returns at once.
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

ARCHES = {"x86_64": "amd64", "aarch64": "arm64"}  # QEMU's name -> Debian's
CONSOLES = {"x86_64": "ttyS0", "aarch64": "ttyAMA0"}
ARTEFACTS = ("vmlinuz", "initramfs.cpio.gz", "disk-A.img", "disk-B.img")
# bumped when the artefacts change: an older cache is rebuilt (2: pvpanic in the initramfs; 3: a getty on tty1)
FORMAT = "3"
HOST_BUSYBOX = "/bin/busybox"  # busybox-static: applet list (and the amd64 guest's binary)
INSTALL_HINT = "`apt-get install qemu-system-x86 qemu-system-arm busybox-static cpio` (`make test` does it)"
# insmod order, from each module's depends=; Debian builds virtio as modules
MODULES = (
    "drivers/virtio/virtio_ring",
    "drivers/virtio/virtio",
    "drivers/virtio/virtio_pci_modern_dev",
    "drivers/virtio/virtio_pci_legacy_dev",
    "drivers/virtio/virtio_pci",
    "drivers/virtio/virtio_mmio",
    "drivers/block/virtio_blk",
    "net/core/failover",
    "drivers/net/net_failover",
    "drivers/net/virtio_net",
)
# pvpanic tells QEMU about a guest panic; only the amd64 cloud kernel has it (arm64's is built without)
PANIC_MODULES = ("drivers/misc/pvpanic/pvpanic", "drivers/misc/pvpanic/pvpanic-pci")
PASSWORD = "root"
DISK_SIZE = "16M"


def cache_root() -> Path:
    """Where artefacts are cached: ``$JUMPSTARTER_QEMU_CACHE`` or ``~/.cache/jumpstarter-jupyter/qemu``."""
    configured = os.environ.get("JUMPSTARTER_QEMU_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "jumpstarter-jupyter" / "qemu"


@dataclass(frozen=True)
class GuestImages:
    """The artefacts of one architecture, as paths."""

    arch: str
    folder: Path

    @property
    def kernel(self) -> Path:
        """The kernel image (bzImage on x86_64, Image on aarch64)."""
        return self.folder / "vmlinuz"

    @property
    def initramfs(self) -> Path:
        """The initramfs: loads virtio, then boots ``root=`` or its own root."""
        return self.folder / "initramfs.cpio.gz"

    def disk(self, variant: str) -> Path:
        """Root image ``"A"`` or ``"B"``."""
        return self.folder / f"disk-{variant}.img"

    def complete(self) -> bool:
        """True when every artefact of this ``FORMAT`` is there (its stamp is written last)."""
        stamp = self.folder / "format"
        return (
            stamp.is_file()
            and stamp.read_text().strip() == FORMAT
            and all((self.folder / name).is_file() for name in ARTEFACTS)
        )


def images_for(arch: str, root: Path | None = None) -> GuestImages:
    """The cached artefacts of ``arch``; FileNotFoundError naming the build command when absent."""
    images = GuestImages(_check_arch(arch), (root or cache_root()) / arch)
    if not images.complete():
        raise FileNotFoundError(
            f"no QEMU guest images for {arch} in {images.folder}: "
            f"run `jumpstarter-jupyter qemu-images --arch {arch}`"
        )
    return images


def build(arch: str, root: Path | None = None) -> tuple[GuestImages, bool]:
    """Build the artefacts of ``arch`` unless cached; returns them and whether anything was built."""
    images = GuestImages(_check_arch(arch), (root or cache_root()) / arch)
    if images.complete():
        return images, False
    if not os.access(HOST_BUSYBOX, os.X_OK) or not shutil.which("cpio"):
        raise FileNotFoundError(f"building QEMU images needs busybox-static and cpio: run {INSTALL_HINT}")
    images.folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="qemu-build-", dir=images.folder) as scratch:
        work = Path(scratch)
        apt = _apt_options(ARCHES[arch], images.folder.parent)
        busybox = _guest_busybox(apt, work)
        modules = _kernel(apt, ARCHES[arch], work, images.kernel)
        _initramfs(work, busybox, modules, CONSOLES[arch], images.initramfs)
        for variant in ("A", "B"):
            _disk(work, busybox, CONSOLES[arch], variant, images.disk(variant))
    _write_atomically(images.folder / "format", f"{FORMAT}\n".encode())
    return images, True


def _check_arch(arch: str) -> str:
    if arch not in ARCHES:
        raise ValueError(f"arch must be one of {', '.join(ARCHES)}, got {arch!r}")
    return arch


def _apt_options(debian_arch: str, root: Path) -> list[str]:
    """apt options for ``debian_arch``: the system's for its own arch, a private state for a foreign one.

    A private state leaves the system's dpkg architectures and lists untouched.
    """
    if debian_arch == _host_arch():
        return []
    state = root / f"apt-{debian_arch}"
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    options = [
        f"-oAPT::Architecture={debian_arch}",
        f"-oAPT::Architectures::={debian_arch}",
        f"-oDir::State::Lists={state / 'lists'}",
        f"-oDir::Cache={state / 'cache'}",
        f"-oDir::State::status={state / 'status'}",
    ]
    if not any(name.endswith("Packages") or "Packages." in name for name in os.listdir(state / "lists")):
        _run(["apt-get", *options, "update"])
    return options


def _host_arch() -> str:
    return _run(["dpkg", "--print-architecture"]).strip()


def _download(apt: list[str], package: str, work: Path) -> Path:
    """``apt-get download`` one package and unpack it; returns the unpacked folder."""
    debs = work / "debs"
    debs.mkdir(exist_ok=True)
    _run(["apt-get", *apt, "download", package], cwd=debs)
    unpacked = work / package
    deb = next(debs.glob(f"{package}_*.deb"))
    _run(["dpkg-deb", "-x", str(deb), str(unpacked)])
    deb.unlink()
    return unpacked


def _guest_busybox(apt: list[str], work: Path) -> Path:
    """The static busybox for the guest: the host's own, or the foreign arch's package."""
    if not apt:
        return Path(HOST_BUSYBOX)
    return _download(apt, "busybox-static", work) / "bin" / "busybox"


def _kernel(apt: list[str], debian_arch: str, work: Path, target: Path) -> list[Path]:
    """Unpack the cloud kernel package: copy its image to ``target``, return the modules to load."""
    depends = _run(["apt-cache", *apt, "depends", f"linux-image-cloud-{debian_arch}"])
    package = next(
        line.split()[-1]
        for line in depends.splitlines()
        if line.strip().startswith("Depends: linux-image-") and line.split()[-1][12:13].isdigit()
    )
    release = package.removeprefix("linux-image-")
    unpacked = _download(apt, package, work)
    # renamed into place: a guest booting from an older cache meanwhile keeps reading a whole file
    _write_atomically(target, (unpacked / "boot" / f"vmlinuz-{release}").read_bytes())
    modules = unpacked / "lib" / "modules" / release / "kernel"
    panic = [modules / f"{module}.ko" for module in PANIC_MODULES]
    return [modules / f"{module}.ko" for module in MODULES] + [path for path in panic if path.is_file()]


def _initramfs(work: Path, busybox: Path, modules: list[Path], console: str, target: Path) -> None:
    """The fixed "boot firmware": loads virtio, then mounts ``root=`` or keeps its own root."""
    root = _rootfs(work / "initramfs", busybox, console, "initramfs-only root", "initramfs")
    (root / "lib" / "modules").mkdir(parents=True)
    for module in modules:
        shutil.copyfile(module, root / "lib" / "modules" / module.name)
    (root / "lib" / "modules" / "load-order").write_text("".join(f"{module.stem}\n" for module in modules))
    _script(root / "init", INIT)
    files = _run(["find", "."], cwd=root)
    archive = subprocess.run(
        ["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"],
        cwd=root,
        input=files.encode(),
        capture_output=True,
        check=True,
    ).stdout
    _write_atomically(target, gzip.compress(archive, compresslevel=1))


def _disk(work: Path, busybox: Path, console: str, variant: str, target: Path) -> None:
    """An ext4 root image filled from a folder (``mke2fs -d``: no loop mount, no root needed)."""
    root = _rootfs(work / f"rootfs-{variant}", busybox, console, f"disk image {variant}", f"image {variant}")
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _run(["mke2fs", "-q", "-t", "ext4", "-L", f"DUT{variant}", "-d", str(root), str(partial), DISK_SIZE])
    partial.rename(target)


def _rootfs(root: Path, busybox: Path, console: str, banner: str, page: str) -> Path:
    """A busybox root: init, getty on the console, root's password, httpd on port 80."""
    for folder in (
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc/init.d",
        "proc",
        "sys",
        "dev",
        "tmp",
        "root",
        "www",
        "newroot",
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(busybox, root / "bin" / "busybox")
    (root / "bin" / "busybox").chmod(0o755)
    for applet in _run([HOST_BUSYBOX, "--list-full"]).split():
        if applet != "bin/busybox":
            (root / applet).symlink_to("/bin/busybox")
    password = _run([HOST_BUSYBOX, "mkpasswd", "-m", "sha512", PASSWORD]).strip()
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": "root:x:0:\n",
        "etc/shadow": f"root:{password}:19000:0:99999:7:::\n",
        "etc/hostname": "dut\n",
        "etc/profile": 'export PS1="dut:\\w# "\n',
        "etc/inittab": INITTAB.format(console=console) + SCREEN_GETTY.get(console, ""),
    }
    for name, text in files.items():
        (root / name).write_text(text)
    (root / "etc" / "shadow").chmod(0o600)
    _script(
        root / "etc" / "init.d" / "rcS",
        RCS.format(banner=f"*** DUT banner: {banner} ***", page=f"hello from {page}"),
    )
    return root


def _script(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _write_atomically(target: Path, data: bytes) -> None:
    partial = target.with_suffix(".partial")
    partial.write_bytes(data)
    partial.rename(target)


def _run(argv: list[str], cwd: Path | None = None) -> str:
    """Run a build command; a failure names the command and its stderr."""
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return result.stdout


INITTAB = """::sysinit:/etc/init.d/rcS
{console}::respawn:/sbin/getty -L 115200 {console} vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/usr/bin/killall httpd
::shutdown:/bin/umount -a -r
"""

# x86_64 boards have a VGA screen (the UART is ttyS0 there): a login on its first virtual terminal
SCREEN_GETTY = {CONSOLES["x86_64"]: "tty1::respawn:/sbin/getty 38400 tty1\n"}

# slirp's defaults (10.0.2.15, gateway 10.0.2.2) need no DHCP; `dmesg -n 1` keeps later kernel
# messages out of command output
RCS = """#!/bin/sh
grep -q ' /proc ' /proc/mounts 2>/dev/null || mount -t proc proc /proc
grep -q ' /sys ' /proc/mounts || mount -t sysfs sysfs /sys
grep -q ' /dev ' /proc/mounts || mount -t devtmpfs devtmpfs /dev
hostname -F /etc/hostname
ip link set lo up
ip link set eth0 up && ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2
echo '{page}' > /www/index.html
httpd -p 80 -h /www
dmesg -n 1
echo '{banner}'
"""

INIT = """#!/bin/sh
mount -t devtmpfs devtmpfs /dev; mount -t proc proc /proc; mount -t sysfs sysfs /sys
echo "stage1: initramfs /init, loading drivers"
for m in $(cat /lib/modules/load-order); do
  insmod /lib/modules/$m.ko 2>/dev/null
done
root=; for a in $(cat /proc/cmdline); do case $a in root=*) root=${a#root=};; esac; done
if [ -n "$root" ]; then
  i=0; while [ ! -b "$root" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done
  if mount -t ext4 -o rw "$root" /newroot; then
    echo "stage1: switch_root to $root"
    mount --move /dev /newroot/dev; umount /proc /sys
    exec switch_root /newroot /sbin/init
  fi
  echo "stage1: cannot mount $root, staying in initramfs"
fi
exec /sbin/init
"""
