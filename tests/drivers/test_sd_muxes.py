"""Flashing real block devices: loop devices made with ``losetup`` over files in tmp_path.

Whole images, bmap flashing of a 1 GiB sparse image (bmaps made by Debian's ``bmaptool``),
compressed images with a bmap, a corrupted range, verify, the refusals (a mounted ext4 on the
loop device, an image larger than the device; the root filesystem, swap and a fixed disk on
mountinfo/sysfs fixture trees, never this machine's disks), and a client killed mid-flash.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import struct
import subprocess

import pytest
import zstandard

from jumpstarter_jupyter import ConfigError, DriverError, DriverInvalidArgument, connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.storage import blockdev
from jumpstarter_jupyter.drivers.storage import client as storage_client
from jumpstarter_jupyter.drivers.storage.bmap import load, parse
from jumpstarter_jupyter.drivers.storage.common import StorageRefused
from jumpstarter_jupyter.drivers.storage.device import StorageDevice
from jumpstarter_jupyter.exporter import build_tree, parse_config
from support import client_for, kill_mid_flash, run_cli, serving

MiB = 1 << 20


def with_partition_table(data: bytearray) -> bytearray:
    """Put an MBR with one Linux partition (sector 2048 to the end) at the start of ``data``."""
    sectors = len(data) // 512 - 2048
    entry = struct.pack("<B3sB3sII", 0, b"\0\0\0", 0x83, b"\0\0\0", 2048, sectors)
    data[446:462] = entry
    data[510:512] = b"\x55\xaa"
    return data


def bmaptool(image, bmap) -> None:
    subprocess.run(["bmaptool", "create", "-o", str(bmap), str(image)], check=True, capture_output=True)


@pytest.fixture(scope="module")
def sparse_image(tmp_path_factory):
    """A 1 GiB sparse image with ~100 MiB mapped in 10 places, and bmaptool's bmap of it."""
    if shutil.which("bmaptool") is None:
        pytest.fail("bmaptool is missing: `make test` installs Debian's bmap-tools")
    directory = tmp_path_factory.mktemp("sparse")
    image = directory / "sparse.img"
    with open(image, "wb") as out:
        out.truncate(1 << 30)
        for offset in range(0, 1 << 30, 103 * MiB):
            out.seek(offset)
            out.write(os.urandom(10 * MiB))
    bmaptool(image, directory / "sparse.img.bmap")
    return image


def read(device: str, offset: int, length: int) -> bytes:
    with open(device, "rb") as disk:
        disk.seek(offset)
        return disk.read(length)


def test_a_whole_image_lands_byte_exact_and_the_partition_table_is_reread(loop, tmp_path):
    device = loop(16 * MiB)
    image = tmp_path / "image.img"
    content = with_partition_table(bytearray(os.urandom(12 * MiB)))
    image.write_bytes(content)
    with client_for(StorageDevice(device=device), "storage") as storage:
        assert storage.state() == "host"
        storage.dut()  # no mux: accepted, and nothing changes
        assert storage.state() == "host"
        figures = storage.flash(image)
        assert figures["device"] == device and figures["written"] == len(content) and not figures["bmap"]
        assert figures["mb_per_s"] > 0 and figures["partitions_reread"]  # BLKRRPART answered (losetup -P)
        info = storage.info()
        assert info == {"device": device, "size": 16 * MiB, "last_flash": figures}
    assert read(device, 0, len(content)) == content


@pytest.mark.parametrize("ranges_per_call", [20_000, 4])
def test_a_bmap_flash_writes_only_the_mapped_ranges(loop, sparse_image, ranges_per_call, monkeypatch):
    """With 4 ranges per call the map goes in three write_ranges calls, as a large map's would."""
    monkeypatch.setattr(storage_client, "RANGES_PER_CALL", ranges_per_call)
    bmap = load(f"{sparse_image}.bmap")
    assert 95 * MiB < bmap.mapped_bytes < 115 * MiB
    device = loop(1 << 30)
    marker = b"untouched" * 1000  # in a gap of the map: a whole-image write would zero it
    gap = bmap.span(bmap.ranges[0])[1] + MiB
    with open(device, "r+b") as disk:
        disk.seek(gap)
        disk.write(marker)
    calls = []
    with client_for(StorageDevice(device=device), "storage") as storage:
        figures = storage.flash(sparse_image, progress=lambda sent, total: calls.append((sent, total)))
    assert figures["bmap"] and figures["written"] == bmap.mapped_bytes and figures["image_size"] == 1 << 30
    assert calls[-1] == (bmap.mapped_bytes, bmap.mapped_bytes), "more than the mapped bytes crossed the wire"
    assert [s for s, _ in calls] == sorted(s for s, _ in calls)
    with open(sparse_image, "rb") as image:
        for mapped in bmap.ranges:
            offset, length = bmap.span(mapped)
            image.seek(offset)
            assert read(device, offset, length) == image.read(length), bmap.describe(mapped)
    assert read(device, gap, len(marker)) == marker


def test_a_compressed_whole_image_is_decompressed_by_the_exporter(loop, tmp_path):
    content = os.urandom(MiB) * 3
    packed = tmp_path / "image.img.xz"
    packed.write_bytes(lzma.compress(content, preset=0))
    bad = tmp_path / "bad.img.gz"
    bad.write_bytes(b"not gzip" * 1000)
    device = loop(4 * MiB)
    with client_for(StorageDevice(device=device), "storage") as storage:
        figures = storage.flash(packed)
        assert figures["written"] == figures["image_size"] == len(content)
        with pytest.raises(
            DriverInvalidArgument, match="dut.storage.write: the upload is not valid gzip data"
        ):
            storage.flash(bad)
    assert read(device, 0, len(content)) == content


def test_a_compressed_image_with_a_bmap_is_decompressed_by_the_client(loop, tmp_path):
    image = tmp_path / "small.img"
    with open(image, "wb") as out:
        out.truncate(48 * MiB)
        for offset in (0, 20 * MiB, 40 * MiB):
            out.seek(offset)
            out.write(os.urandom(3 * MiB))
    bmaptool(image, tmp_path / "small.img.bmap")  # found beside small.img.zst, as bmaptool finds it
    packed = tmp_path / "small.img.zst"
    packed.write_bytes(zstandard.ZstdCompressor(level=1).compress(image.read_bytes()))
    device = loop(64 * MiB)
    sent = []
    with client_for(StorageDevice(device=device), "storage") as storage:
        figures = storage.flash(packed, verify=True, progress=lambda done, total: sent.append(done))
    assert figures["bmap"] and figures["verified"] and sent[-1] == 9 * MiB
    assert read(device, 0, 48 * MiB) == image.read_bytes()


def test_a_corrupted_range_fails_the_flash_naming_it(loop, tmp_path):
    image = tmp_path / "image.img"
    with open(image, "wb") as out:
        out.truncate(16 * MiB)
        out.write(os.urandom(MiB))
        out.seek(8 * MiB)
        out.write(os.urandom(MiB))
    bmaptool(image, tmp_path / "image.img.bmap")
    bmap = load(tmp_path / "image.img.bmap")
    with open(image, "r+b") as out:  # one byte of the second range changes after the bmap was made
        out.seek(8 * MiB + 4097)
        out.write(b"\xff" if out.read(1) != b"\xff" else b"\0")
    device = loop(16 * MiB)
    second = re.escape(bmap.describe(bmap.ranges[1]))
    with client_for(StorageDevice(device=device), "storage") as storage:
        with pytest.raises(
            DriverInvalidArgument,
            match=f"checksum mismatch in {second}: sha256 [0-9a-f]+, "
            "the bmap says [0-9a-f]+; the flash failed",
        ):
            storage.flash(image)
        assert storage.state() == "host"


def test_verify_reads_the_whole_image_back(loop, tmp_path):
    device = loop(8 * MiB)
    image = tmp_path / "image.img"
    image.write_bytes(os.urandom(5 * MiB + 1000))  # a tail that is no whole sector
    with client_for(StorageDevice(device=device), "storage") as storage:
        figures = storage.flash(image, verify=True)
    assert figures["verified"] and figures["written"] == 5 * MiB + 1000
    assert read(device, 0, 5 * MiB + 1000) == image.read_bytes()


def test_a_mounted_card_is_refused_and_left_alone(loop, tmp_path):
    device = loop(32 * MiB)
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    subprocess.run(["mount", device, str(mountpoint)], check=True, capture_output=True)
    try:
        (mountpoint / "keep.txt").write_text("precious")
        image = tmp_path / "image.img"
        image.write_bytes(os.urandom(MiB))
        refused = pytest.raises(
            DriverError,
            match=f"refusing to write {device} \\({os.path.basename(device)}\\): "
            f"it is mounted \\({device} on {mountpoint}\\); unmount it first",
        )
        with client_for(StorageDevice(device=device), "storage") as storage, refused:
            storage.flash(image)
        assert (mountpoint / "keep.txt").read_text() == "precious"
    finally:
        subprocess.run(["umount", str(mountpoint)], capture_output=True, check=False)


def test_an_image_larger_than_the_device_is_refused(loop, tmp_path, sparse_image):
    device = loop(64 * MiB)
    plain = tmp_path / "big.img"
    plain.write_bytes(os.urandom(65 * MiB))
    with client_for(StorageDevice(device=device), "storage") as storage:
        with pytest.raises(
            DriverError,
            match=f"refusing to write {device} \\(loop\\d+\\): it is smaller than "
            f"the image \\({64 * MiB} bytes < {1 << 30} bytes\\)",
        ):
            storage.flash(sparse_image)  # the bmap says how large the image is before a byte moves
        with pytest.raises(
            DriverInvalidArgument, match=f"the image is larger than {device} \\({64 * MiB} bytes\\)"
        ):
            storage.flash(plain)  # a plain stream is stopped at the device's end


def fixture_tree(root, disks: dict, mounts: list[str] = (), swaps: list[str] = ()):
    """A /sys, /proc and /dev shaped tree: ``disks`` maps a name to (sysfs device path, sizes of
    partitions, removable); mountinfo lines are ``(major:minor, mount point, source)``."""
    for number, (name, (where, partitions, removable)) in enumerate(disks.items()):
        device = root / "sys" / "devices" / where / "block" / name
        device.mkdir(parents=True)
        (device / "size").write_text("2097152\n")
        (device / "removable").write_text(f"{int(removable)}\n")
        (device / "dev").write_text(f"8:{number * 16}\n")
        (device / "uevent").write_text(f"MAJOR=8\nMINOR={number * 16}\nDEVNAME={name}\nDEVTYPE=disk\n")
        (device / "holders").mkdir()
        for index in range(1, partitions + 1):
            part = device / f"{name}{index}"
            (part / "holders").mkdir(parents=True)
            (part / "partition").write_text(f"{index}\n")
            (part / "dev").write_text(f"8:{number * 16 + index}\n")
        for folder in ("class/block", "block"):
            (root / "sys" / folder).mkdir(parents=True, exist_ok=True)
            os.symlink(device, root / "sys" / folder / name)
    (root / "proc" / "self").mkdir(parents=True)
    (root / "proc" / "self" / "mountinfo").write_text(
        "".join(
            f"{20 + i} 1 {number} / {point} rw,relatime - ext4 {source} rw\n"
            for i, (number, point, source) in enumerate(mounts)
        )
    )
    (root / "proc" / "swaps").write_text(
        "Filename\tType\tSize\tUsed\tPriority\n"
        + "".join(f"{swap}\tpartition\t1048572\t0\t-2\n" for swap in swaps)
    )


USB_CARD = ("pci0000:00/0000:00:14.0/usb1/1-1/1-1.1/1-1.1:1.0/host6/target6:0:0/6:0:0:0", 2, True)
SATA = ("pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0", 2, False)


@pytest.mark.parametrize(
    "mounts, swaps, reason",
    [
        ([("8:1", "/", "/dev/sda1")], [], r"it holds the root filesystem \(/dev/sda1 on /\)"),
        ([], ["/dev/sda2"], r"it holds swap \(/dev/sda2\)"),
        (
            [("8:1", "/home/lab/mnt point", "/dev/sda1")],
            [],
            r"it is mounted \(/dev/sda1 on /home/lab/mnt point\)",
        ),
        (
            [],
            [],
            r"it is a fixed disk \(not removable, not on USB, not a loop device\); set allow_fixed: true",
        ),
    ],
)
def test_refusals_on_fixture_trees(tmp_path, mounts, swaps, reason):
    mounts = [(n, p.replace(" ", "\\040"), s) for n, p, s in mounts]
    fixture_tree(tmp_path, {"sda": SATA, "sdb": USB_CARD}, mounts, swaps)
    with pytest.raises(StorageRefused, match=r"refusing to write /dev/sda \(sda\): " + reason):
        blockdev.check_writable(blockdev.inspect("/dev/sda", tmp_path), 1 << 20)
    blockdev.check_writable(
        blockdev.inspect("/dev/sdb", tmp_path), 1 << 20
    )  # the USB card next to it is fine
    if not mounts and not swaps:
        blockdev.check_writable(blockdev.inspect("/dev/sda", tmp_path), 1 << 20, allow_fixed=True)


def test_a_partition_or_an_unknown_device_is_refused(tmp_path):
    fixture_tree(tmp_path, {"sdb": USB_CARD})
    (tmp_path / "dev" / "disk" / "by-id").mkdir(parents=True)
    os.symlink("../../sdb", tmp_path / "dev" / "disk" / "by-id" / "usb-Card_Reader-0:0")
    os.symlink(
        tmp_path / "sys" / "devices" / USB_CARD[0] / "block" / "sdb" / "sdb1",
        tmp_path / "sys" / "class" / "block" / "sdb1",
    )
    assert blockdev.inspect("/dev/disk/by-id/usb-Card_Reader-0:0", tmp_path).name == "sdb"
    with pytest.raises(StorageRefused, match=r"refusing to write /dev/sdb1 \(sdb1\): it is a partition"):
        blockdev.inspect("/dev/sdb1", tmp_path)
    with pytest.raises(StorageRefused, match=r"/dev/sdx: not a block device the kernel knows"):
        blockdev.inspect("/dev/sdx", tmp_path)


def test_a_client_killed_mid_flash_leaves_the_card_on_the_host_and_the_next_flash_works(loop, tmp_path):
    device = loop(96 * MiB)
    big, small = tmp_path / "big.img", tmp_path / "small.img"
    big.write_bytes(os.urandom(80 * MiB))
    small.write_bytes(os.urandom(3 * MiB))
    root = Composite()
    root.children = {"storage": StorageDevice(device=device)}
    with serving(root) as exporter:
        kill_mid_flash(exporter.address, big, 8 << 20)
        with connect(exporter.address) as dut:
            figures = dut.storage.flash(small)  # waits for the aborted write to let go of the device
            assert figures["written"] == 3 * MiB and dut.storage.state() == "host"
    assert read(device, 0, 3 * MiB) == small.read_bytes()
    with open("/proc/self/mountinfo") as mounts:
        assert device not in mounts.read()


def test_cli_flash_with_bmap_and_verify_prints_the_figures(loop, tmp_path):
    image = tmp_path / "image.img"
    with open(image, "wb") as out:
        out.truncate(32 * MiB)
        out.write(os.urandom(2 * MiB))
    bmaptool(image, tmp_path / "image.img.bmap")
    device = loop(32 * MiB)
    with client_for(StorageDevice(device=device), "storage") as storage:
        result = run_cli(storage, "flash", "--verify", str(image))
        assert result.returncode == 0, result.stderr
        assert f"flashed {image} to {device} with its bmap: 2.0 of 32.0 MiB written in" in result.stdout
        assert "verified" in result.stdout
        result = run_cli(storage, "flash", "--no-bmap", str(image))
        assert result.returncode == 0, result.stderr
        assert f"flashed {image} to {device}: 32.0 MiB written in" in result.stdout
    assert read(device, 0, 32 * MiB) == image.read_bytes()


def test_config_names_and_errors():
    config = parse_config(
        """
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  card:
    type: StorageDevice
    config: {device: /dev/loop0, storage_timeout: -1}
""",
        "lab.yaml",
    )
    with pytest.raises(
        ConfigError, match=r"lab\.yaml: export\.card\.config.*storage_timeout must be >= 0 seconds"
    ):
        build_tree(config)


def test_bmap_file_errors(tmp_path):
    image = tmp_path / "image.img"
    with open(image, "wb") as out:
        out.truncate(MiB)
        out.write(b"data" * 1000)
    bmaptool(image, tmp_path / "image.bmap")
    text = (tmp_path / "image.bmap").read_bytes()
    assert len(parse(text).ranges) == 1
    with pytest.raises(ValueError, match=r"x\.bmap: the bmap file is corrupt"):
        parse(text.replace(b"<BlockSize> 4096", b"<BlockSize> 8192"), "x.bmap")
    with pytest.raises(ValueError, match=r"x\.bmap: not a bmap file"):
        parse(b"<html/>", "x.bmap")


def test_the_storage_widget_shows_the_card_and_the_last_flash(loop, tmp_path):
    """The widget in this process (no front end): its traits are what the view draws."""
    from jumpstarter_jupyter.drivers.storage.widget import StorageMuxWidget

    device = loop(8 * MiB)
    image = tmp_path / "image.img"
    image.write_bytes(os.urandom(4 * MiB))
    with client_for(StorageDevice(device=device), "storage") as storage:
        widget = StorageMuxWidget(storage)
        try:
            widget.action_flash(str(image))
            widget.flush()
            assert (widget.device, widget.size, widget.state) == (device, 8 * MiB, "host")
            assert widget.last_flash["written"] == 4 * MiB and widget.last_flash["device"] == device
            assert widget.sent == widget.total == 4 * MiB and widget.rate > 0 and not widget.flashing
            assert widget.summarize().endswith(f"\ncard: {device} ({8 * MiB} bytes)")  # the text fallback
        finally:
            widget.close()


def test_verify_names_the_bytes_that_differ(loop):
    """Bytes changed on the device after the write (a failing card) are caught by the read-back."""
    import io

    from jumpstarter_jupyter.drivers.storage.flashing import CHUNK, DeviceWriter

    device = loop(16 * MiB)
    image = os.urandom(10 * MiB)
    with DeviceWriter(device) as writer:
        digests: list[bytes] = []
        assert writer.write_stream(io.BytesIO(image), digests) == len(image)
        writer.finish()
        writer.verify_stream(len(image), digests)
        with open(device, "r+b") as card:  # a byte of the third chunk flips underneath
            card.seek(2 * CHUNK + 17)
            card.write(bytes([image[2 * CHUNK + 17] ^ 0xFF]))
        with pytest.raises(
            ValueError,
            match=f"verify failed: {device} differs from the image in bytes {2 * CHUNK}-{len(image) - 1}",
        ):
            writer.verify_stream(len(image), digests)


def test_a_disk_held_by_device_mapper_or_without_medium_is_refused(tmp_path):
    fixture_tree(tmp_path, {"sdb": USB_CARD})
    card = blockdev.inspect("/dev/sdb", tmp_path)
    (card.sysfs / "sdb2" / "holders" / "dm-0").mkdir()
    with pytest.raises(
        StorageRefused, match=r"/dev/sdb \(sdb\): sdb2 is in use by dm-0 \(device-mapper, LVM or RAID\)"
    ):
        blockdev.check_writable(card, None)
    (card.sysfs / "sdb2" / "holders" / "dm-0").rmdir()
    (card.sysfs / "size").write_text("0\n")
    with pytest.raises(
        StorageRefused, match=r"/dev/sdb \(sdb\): it has no medium \(size 0\): is the card inserted\?"
    ):
        blockdev.check_writable(card, None)
