"""A resource channel's driver side: frames arrive as views, are read or copied once, and the
channel holds a bounded number of bytes (cost: < 1 s)."""

import threading

import pytest

from jumpstarter_jupyter.driver.resources import QUEUE_BYTES, Channel, ResourceFile
from jumpstarter_jupyter.driver.sync import Pipe


def _filled(frames: list) -> ResourceFile:
    channel = Channel()
    for frame in frames:
        channel.inbound.put(frame)
    return ResourceFile(channel)


def test_reads_cross_frame_boundaries_and_end_at_the_clients_eof():
    message = b"\x0a\x05hello"
    source = _filled([memoryview(message)[2:], b" world", b""])
    assert source.read(0) == b""  # at once, with nothing pending yet
    assert source.read(3) == b"hel"
    assert source.read(100) == b"lo"  # what is pending: one frame at most
    assert source.read() == b" world"
    assert source.read(10) == b""


def test_readinto_copies_each_frame_into_the_buffer_once_and_returns_0_at_eof():
    source = _filled([memoryview(b"abcdef"), b"gh", b""])
    buffer = bytearray(4)
    assert source.readinto(buffer) == 4 and buffer == b"abcd"
    assert source.readinto(memoryview(buffer)[1:]) == 2 and buffer == b"aefd"
    assert source.readinto(buffer) == 2 and buffer[:2] == b"gh"
    assert source.readinto(buffer) == 0


def test_a_client_gone_before_its_eof_is_a_broken_pipe():
    channel = Channel()
    channel.inbound.put(b"partial")
    channel.abort()
    source = ResourceFile(channel)
    assert source.read(7) == b"partial"
    with pytest.raises(BrokenPipeError, match="before the end of its data"):
        source.read(1)


def test_a_pipe_with_max_bytes_takes_no_item_once_it_holds_that_many_bytes():
    pipe = Pipe(depth=32, max_bytes=8)
    assert pipe.put(b"12345") and pipe.put(b"6789")  # 5 < 8: room for one more, however large
    assert pipe.held == 9 and not pipe._has_room()
    writer = threading.Thread(target=pipe.put, args=(b"x",))
    writer.start()  # waits for room
    assert pipe.get() == b"12345"  # 4 held: room again
    writer.join(10)
    assert not writer.is_alive()
    assert [pipe.get(), pipe.get()] == [b"6789", b"x"] and pipe.held == 0


def test_the_inbound_channel_is_bounded_in_bytes_as_well_as_in_frames():
    assert Channel().inbound.max_bytes == QUEUE_BYTES
