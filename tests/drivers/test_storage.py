"""Storage muxes through a real exporter: switching, byte-exact transfers, compressed flashing, CLI."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import pty
import subprocess

import pytest
import zstandard

from jumpstarter_jupyter import ConfigError, DriverError, DriverInvalidArgument
from jumpstarter_jupyter.drivers.storage.client import StorageMuxClient
from jumpstarter_jupyter.drivers.storage.driver import MockStorageMux, VirtualStorageMux
from jumpstarter_jupyter.exporter import build_tree, parse_config
from support import cli_argv, client_for, kill_mid_flash, run_cli

MiB = 1 << 20
COMPRESSORS = {".gz": gzip.compress, ".xz": lzma.compress, ".zst": zstandard.compress, ".bz2": bz2.compress}


def image(size: int) -> bytes:
    """Compressible but not trivial content: a counter pattern with random runs."""
    return (os.urandom(4096) + bytes(range(256)) * 48) * (size // 16384) + os.urandom(size % 16384)


@pytest.fixture
def card(tmp_path):
    """A VirtualStorageMux over a file, as a simulated board has it (connected to the DUT)."""
    path = tmp_path / "card.img"
    path.write_bytes(b"original")
    return VirtualStorageMux(str(path))


def test_switching_and_state(card):
    with client_for(card, "storage") as storage:
        assert isinstance(storage, StorageMuxClient)
        assert (
            storage.labels["jumpstarter.dev/client"]
            == "jumpstarter_driver_opendal.client.StorageMuxFlasherClient"
        )
        assert storage.state() == "dut" == card.connected_to
        storage.host()
        assert storage.state() == "host" == card.connected_to
        storage.off()
        assert card.connected_to == "off"
        storage.dut()
        assert storage.state() == "dut"


def test_20_mib_round_trip_is_byte_exact(tmp_path):
    data = os.urandom(20 * MiB)
    source, copy = tmp_path / "source.img", tmp_path / "copy.img"
    source.write_bytes(data)
    mux = MockStorageMux()
    with client_for(mux, "storage") as storage:
        storage.write_local_file(source)
        assert open(mux.path, "rb").read() == data
        storage.read_local_file(copy)
    assert copy.read_bytes() == data


@pytest.mark.parametrize("suffix", sorted(COMPRESSORS))
def test_flash_compressed_image_lands_decompressed(card, tmp_path, suffix):
    data = image(3 * MiB + 5)
    packed = tmp_path / f"image.img{suffix}"
    packed.write_bytes(COMPRESSORS[suffix](data))
    assert packed.stat().st_size < len(data)
    with client_for(card, "storage") as storage:
        storage.flash(packed)
        assert storage.state() == "dut"
    assert open(card.path, "rb").read() == data


def test_flash_progress_counts_up_to_the_file_size(card, tmp_path):
    plain = tmp_path / "image.img"
    plain.write_bytes(image(5 * MiB + 123))
    calls = []
    with client_for(card, "storage") as storage:
        storage.flash(plain, progress=lambda sent, total: calls.append((sent, total)))
    total = plain.stat().st_size
    assert len(calls) > 1
    assert all(t == total for _, t in calls)
    sent = [s for s, _ in calls]
    assert sent == sorted(sent) and len(set(sent)) == len(sent)
    assert sent[-1] == total
    assert open(card.path, "rb").read() == plain.read_bytes()


def test_dump_copies_the_card_and_gives_it_back(card, tmp_path):
    target = tmp_path / "dump.img"
    with client_for(card, "storage") as storage:
        storage.dump(target)
        assert storage.state() == "dut"
    assert target.read_bytes() == b"original"


def test_write_while_on_dut_is_refused(card, tmp_path):
    new = tmp_path / "new.img"
    new.write_bytes(b"new image" * 100_000)
    with client_for(card, "storage") as storage:
        with pytest.raises(DriverError) as caught:
            storage.write_local_file(new)
        message = str(caught.value)
        assert (
            "dut.storage.write: cannot write the storage while it is connected to 'dut': call host() first"
            in message
        )
        with pytest.raises(DriverError, match="cannot read the storage while it is connected to 'off'"):
            storage.off()
            storage.read_local_file(tmp_path / "nothing.img")
        assert open(card.path, "rb").read() == b"original"
        storage.host()  # the connection is still usable, and the write goes through once on the host
        storage.write_local_file(new)
    assert open(card.path, "rb").read() == new.read_bytes()


def test_write_from_for_in_process_callers(card):
    """A board's own flash() reads its resource and hands the data to the mux in-process."""
    with pytest.raises(RuntimeError, match="connected to 'dut': call host\\(\\) first"):
        card.write_from(io.BytesIO(b"image"))
    card.host()
    assert card.write_from(gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(b"image" * 1000))), "gzip") == 5000
    assert open(card.path, "rb").read() == b"image" * 1000
    with pytest.raises(ValueError, match="the upload is not valid gzip data"):
        card.write_from(gzip.GzipFile(fileobj=io.BytesIO(b"garbage")), "gzip")


def test_mock_mux_accepts_writes_in_any_position_like_upstream(tmp_path):
    source = tmp_path / "x.img"
    source.write_bytes(b"mock data")
    mux = MockStorageMux()
    with client_for(mux, "storage") as storage:
        assert storage.state() == "host"
        storage.dut()
        storage.write_local_file(source)
        assert open(mux.path, "rb").read() == b"mock data"
    assert not os.path.exists(mux.path), "the mock's temporary file outlives the exporter"


def test_corrupt_compressed_image_is_a_clear_error(card, tmp_path):
    bad = tmp_path / "image.img.gz"
    bad.write_bytes(b"this is not gzip at all" * 1000)
    with client_for(card, "storage") as storage:
        with pytest.raises(
            DriverInvalidArgument, match=r"dut\.storage\.write: the upload is not valid gzip data"
        ):
            storage.flash(bad)
        assert storage.state() == "host", "a failed flash must not hand a broken card to the DUT"


def test_config_errors_name_the_field():
    config = parse_config(
        """
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  storage:
    type: VirtualStorageMux
    config: {path: /tmp/card.img, connected_to: sideways}
""",
        "storage.yaml",
    )
    with pytest.raises(
        ConfigError,
        match=r"storage\.yaml: export\.storage\.config.*connected_to must be one of host, dut, off",
    ):
        build_tree(config)


def test_cli_switches_flashes_and_dumps(card, tmp_path):
    data = image(2 * MiB)
    packed = tmp_path / "image.img.xz"
    packed.write_bytes(lzma.compress(data))
    with client_for(card, "storage") as storage:
        assert run_cli(storage, "host").returncode == 0
        assert card.connected_to == "host"
        result = run_cli(storage, "state")
        assert (result.returncode, result.stdout) == (0, "host\n")
        assert run_cli(storage, "off").returncode == 0 and card.connected_to == "off"
        assert run_cli(storage, "dut").returncode == 0 and card.connected_to == "dut"

        result = run_cli(storage, "flash", str(packed))
        assert result.returncode == 0, result.stderr
        assert (
            f"flashed {packed} ({packed.stat().st_size} bytes sent); storage connected to the DUT"
            in result.stdout
        )
        assert open(card.path, "rb").read() == data and card.connected_to == "dut"

        oddly_named = tmp_path / "image.bin"
        oddly_named.write_bytes(zstandard.compress(data[::-1]))
        result = run_cli(storage, "flash", "--compression", "zstd", str(oddly_named))
        assert result.returncode == 0, result.stderr
        assert open(card.path, "rb").read() == data[::-1]
        storage.flash(packed)  # the suffix says xz

        dumped = tmp_path / "dump.img"
        result = run_cli(storage, "dump", str(dumped))
        assert result.returncode == 0, result.stderr
        assert dumped.read_bytes() == data
        assert f"dumped {len(data)} bytes to {dumped}" in result.stdout


def test_cli_errors(card, tmp_path):
    bad = tmp_path / "image.img.zst"
    bad.write_bytes(b"garbage" * 100)
    with client_for(card, "storage") as storage:
        result = run_cli(storage, "flash", str(tmp_path / "missing.img"))
        assert result.returncode == 2 and "missing.img' does not exist" in result.stderr, result.stderr
        result = run_cli(storage, "flash", str(bad))
        assert result.returncode == 1, result.stderr
        assert "Error: dut.storage.write: the upload is not valid zstd data" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr, result.stderr


def test_cli_flash_draws_progress_on_a_terminal(card, tmp_path):
    plain = tmp_path / "image.img"
    plain.write_bytes(image(4 * MiB))
    with client_for(card, "storage") as storage:
        controller, terminal = pty.openpty()
        argv = cli_argv(storage.connection.endpoint, "storage", "flash", str(plain))
        process = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=terminal, timeout=60
        )
        os.close(terminal)
        drawn = _read_all(controller)
    assert process.returncode == 0
    assert b"flashing image.img" in drawn and b"100%" in drawn and b" MB/s" in drawn
    assert open(card.path, "rb").read() == plain.read_bytes()


def _read_all(fd: int) -> bytes:
    """What a finished process wrote to the terminal whose controller is ``fd``."""
    out = b""
    try:
        while chunk := os.read(fd, 65536):
            out += chunk
    except OSError:  # EIO: the terminal side is closed and everything has been read
        pass
    os.close(fd)
    return out


def test_an_image_larger_than_the_card_once_decompressed_is_refused_and_the_card_kept(tmp_path):
    """A few KB of zstd that expand to 64 MiB must not fill the exporter's disk."""
    path = tmp_path / "card.img"
    path.write_bytes(b"old image" * 1000)
    bomb = tmp_path / "bomb.img.zst"
    bomb.write_bytes(zstandard.ZstdCompressor().compress(bytes(64 << 20)))
    assert bomb.stat().st_size < 64 << 10
    mux = VirtualStorageMux(path=str(path), connected_to="host", size=1 << 20)
    with client_for(mux, "storage") as storage:
        with pytest.raises(
            DriverInvalidArgument,
            match=r"the image is larger than the card \(1048576 bytes\) once "
            r"decompressed \(zstd\); the card was left as it was",
        ):
            storage.flash(str(bomb))
        assert path.read_bytes() == b"old image" * 1000
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".flashing")] == []
        fits, content = tmp_path / "fits.img", image(1 << 20)
        fits.write_bytes(content)
        storage.flash(str(fits))  # the mux is still usable
        assert path.read_bytes() == content


def test_a_client_killed_mid_flash_leaves_the_card_as_it_was_and_the_mux_usable(tmp_path):
    from jumpstarter_jupyter import connect
    from jumpstarter_jupyter.drivers.composite.driver import Composite
    from support import serving

    path = tmp_path / "card.img"
    path.write_bytes(b"old image")
    big = tmp_path / "big.img"
    big.write_bytes(image(64 << 20))
    root = Composite()
    root.children = {"storage": VirtualStorageMux(path=str(path), connected_to="host", size=128 << 20)}
    with serving(root) as exporter:
        kill_mid_flash(exporter.address, big, 4 << 20)
        with connect(exporter.address) as dut:
            small, content = tmp_path / "small.img", image(1 << 20)
            small.write_bytes(content)
            dut.storage.flash(str(small))  # waits for the aborted write to let go of the card
            assert path.read_bytes() == content
        assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".flashing")] == []
