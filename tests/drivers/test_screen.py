"""Screens over HTTP: HttpVideo against a loopback server speaking ustreamer's HTTP API with
synthetic JPEG frames (CI has no capture card), and UStreamer running Debian's real ustreamer,
which without a capture device serves its NO SIGNAL picture."""

from __future__ import annotations

import io
import json
import shutil

import pytest
from PIL import Image

from jumpstarter_jupyter.drivers import registry
from jumpstarter_jupyter.drivers.screen.client import ImageMismatch
from jumpstarter_jupyter.drivers.screen.common import key_names, text_keys
from jumpstarter_jupyter.drivers.screen.httpvideo import HttpVideo
from jumpstarter_jupyter.drivers.screen.ustreamer import UStreamer
from jumpstarter_jupyter.errors import DriverError, DriverNotImplemented, DriverTimeout
from mjpeg_server import VideoServer, synthetic_frames
from support import client_for, run_cli

SIZE = (640, 360)
DEADLINE = 30.0


@pytest.fixture(scope="module")
def frames():
    return synthetic_frames(12, SIZE)


@pytest.fixture(scope="module")
def server(frames):
    with VideoServer(frames, 12.0, SIZE) as server:
        yield server


@pytest.fixture(scope="module")
def screen(server):
    with client_for(HttpVideo(url=f"{server.url}/stream")) as screen:
        yield screen


def test_key_names_and_typed_text():
    assert key_names("ctrl-alt-del") == ["ctrl", "alt", "delete"]
    assert key_names("Shift+F10") == ["shift", "f10"]
    assert key_names("ctrl--") == ["ctrl", "minus"]
    assert text_keys("aB!\n") == [["a"], ["shift", "b"], ["shift", "1"], ["ret"]]
    with pytest.raises(ValueError, match="unknown key 'hyper'"):
        key_names("ctrl-hyper")
    with pytest.raises(ValueError, match="cannot type 'é'"):
        text_keys("café")


def test_stream_frames_snapshot_and_state(screen):
    first = screen.frame(0, 5.0)
    assert (first.width, first.height, first.format) == (*SIZE, "jpeg") and first.seq >= 1
    later = screen.frame(first.seq, 5.0)
    assert later.seq > first.seq
    assert screen.snapshot().size == SIZE
    state = screen.state()
    assert state["online"] and (state["width"], state["height"]) == SIZE and state["fps"] > 0
    assert not state["keyboard"] and state["source"].startswith("HttpVideo http://127.0.0.1:")
    pictures = list(screen.frames(fps=4, timeout=1.5))
    # the source sends 12 a second; the cap lets through at most 4 a second (and one at the start)
    assert 1 <= len(pictures) <= 7 and all(p.size == SIZE for p in pictures)


def test_snapshot_url_and_the_upstream_type_name(server, tmp_path):
    assert registry.resolve("jumpstarter_driver_video.driver.HttpVideo", ValueError) is HttpVideo
    with client_for(HttpVideo(url=f"{server.url}/stream", snapshot_url=f"{server.url}/snapshot")) as screen:
        assert screen.snapshot().format == "JPEG"
        result = run_cli(screen, "snapshot", str(tmp_path / "shot.png"))
        assert result.returncode == 0, result.stderr
        assert Image.open(tmp_path / "shot.png").size == SIZE


def test_expect_text_reads_the_frame_number(screen):
    found = screen.expect_text(r"FRAME (\d+)", timeout=DEADLINE)
    assert 0 <= int(found.group(1)) < 12
    with pytest.raises(
        DriverTimeout, match=r"'NEVER SHOWN' not seen within 2.0 s; the last frame read: 'FRAME \d+"
    ):
        screen.expect_text("NEVER SHOWN", timeout=2.0)


def test_expect_image_passes_and_saves_the_frame_that_failed(frames, tmp_path):
    still, other = tmp_path / "still.png", tmp_path / "other.png"
    Image.open(io.BytesIO(frames[3])).save(still)
    Image.open(io.BytesIO(frames[9])).convert("L").point(lambda v: 255 - v).save(other)
    with (
        VideoServer(frames[3:4], 5.0, SIZE) as steady,
        client_for(HttpVideo(url=f"{steady.url}/stream")) as screen,
    ):
        assert screen.expect_image(still, tolerance=2, timeout=5.0) <= 2
        with pytest.raises(ImageMismatch, match=r"distance \d+ > tolerance 2 .*FAILED_other.png"):
            screen.expect_image(other, tolerance=2, timeout=1.0)
    assert Image.open(tmp_path / "FAILED_other.png").size == SIZE


def test_record_writes_an_animated_png(screen, tmp_path):
    path = screen.record(1.5, tmp_path / "clip.png", fps=5)
    with Image.open(path) as clip:
        assert clip.format == "PNG" and clip.size == SIZE and clip.n_frames <= 9  # at most 5 a second
        durations = []
        for index in range(clip.n_frames):  # the frames' durations add up to the recording's length
            clip.seek(index)
            durations.append(clip.info["duration"])
        assert 0 < sum(durations) <= 1500


def test_errors_name_the_source(server):
    with pytest.raises(
        ValueError, match="url must be an http:// or https:// URL with a host, got 'rtsp://cam'"
    ):
        HttpVideo(url="rtsp://cam")
    with (
        client_for(HttpVideo(url=f"{server.url}/stream")) as screen,
        pytest.raises(
            DriverNotImplemented,
            match="HttpVideo http://127.0.0.1:\\d+/stream: this source takes no keyboard input",
        ),
    ):
        screen.key("ctrl-alt-del")
    with (
        client_for(HttpVideo(url=f"{server.url}/missing", timeout=2.0)) as screen,
        pytest.raises(DriverError, match=r"HttpVideo http://127.0.0.1:\d+/missing: .*404"),
    ):
        screen.frame(0, 5.0)


def test_ustreamer_command_line():
    if not shutil.which("ustreamer"):
        pytest.fail("ustreamer is missing: `make test` installs it (apt-get install ustreamer)")
    assert registry.resolve("jumpstarter_driver_ustreamer.driver.UStreamer", ValueError) is UStreamer
    with pytest.raises(
        FileNotFoundError, match="no-such-ustreamer is not installed: run `apt-get install ustreamer`"
    ):
        UStreamer(executable="no-such-ustreamer")
    with pytest.raises(RuntimeError, match="ustreamer exited with 1: .*unrecognized|ustreamer exited with 1"):
        UStreamer(args={"no-such-option": "1"})


def test_ustreamer_without_its_device_says_so_and_shows_no_signal(tmp_path):
    device = str(tmp_path / "video9")  # no capture device here: CI machines have none
    driver = UStreamer(args={"device": device, "resolution": "640x480"})
    assert driver.command_line()[1:] == [
        "--device",
        device,
        "--resolution",
        "640x480",
        "--unix",
        str(driver.socket_path),
        "--unix-rm",
    ]
    with client_for(driver) as screen:
        state = screen.state()
        assert (
            state["ok"] is True and state["online"] is False
        )  # ustreamer's own answer, as upstream's client reads it
        assert f"capture device {device} does not exist" in state["error"]
        assert screen.snapshot().size == (640, 480)
        assert screen.expect_text("NO SIGNAL", timeout=DEADLINE)
        raw = screen.stream("connect")  # upstream's raw stream to ustreamer's HTTP server
        raw.send(b"GET /state HTTP/1.0\r\n\r\n")
        reply = b""
        while chunk := raw.receive():
            reply += chunk
        raw.close()
        assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["result"]["source"]["online"] is False
    assert driver.process.returncode is not None  # stopped with the exporter
