"""RouterService data frames built and read by hand are protobuf's own bytes (cost: < 1 s)."""

import pytest

from jumpstarter_jupyter.protocol.frames import GOAWAY_REQUEST, decode_request, encode_data
from jumpstarter_jupyter.protocol.v1 import router_pb2

# lengths around each varint size step (1, 2, 3, 4 bytes) and our 4 MiB frame
SIZES = [1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, (4 << 20) - 64]


@pytest.mark.parametrize("size", SIZES)
def test_a_data_frame_is_byte_for_byte_what_protobuf_serializes(size):
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    assert encode_data(payload) == router_pb2.StreamRequest(payload=payload).SerializeToString()


@pytest.mark.parametrize("size", SIZES)
def test_a_data_frame_reads_back_as_a_view_of_its_payload(size):
    payload = bytes([size % 251]) * size
    message = router_pb2.StreamRequest(payload=payload).SerializeToString()
    decoded = decode_request(message)
    assert isinstance(decoded, memoryview)
    assert decoded.obj is message  # no copy
    assert bytes(decoded) == payload


def test_an_empty_payload_is_an_empty_message_as_protobuf_has_it():
    assert encode_data(b"") == router_pb2.StreamRequest(payload=b"").SerializeToString() == b""
    assert decode_request(b"") == router_pb2.StreamRequest()


@pytest.mark.parametrize(
    "frame",
    [
        router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_GOAWAY),
        router_pb2.StreamRequest(payload=b"last", frame_type=router_pb2.FRAME_TYPE_GOAWAY),
        router_pb2.StreamRequest(payload=b"data", frame_type=router_pb2.FRAME_TYPE_PING),
    ],
)
def test_any_other_frame_is_parsed_by_protobuf(frame):
    decoded = decode_request(frame.SerializeToString())
    assert decoded == frame
    assert (
        GOAWAY_REQUEST
        == router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_GOAWAY).SerializeToString()
    )


def test_a_frame_type_written_before_the_payload_is_still_understood():
    # field order is the writer's choice: frame_type (2) first, then the payload
    message = b"\x10\x00" + router_pb2.StreamRequest(payload=b"abc").SerializeToString()
    decoded = decode_request(message)
    assert decoded.payload == b"abc" and decoded.frame_type == router_pb2.FRAME_TYPE_DATA


def test_a_truncated_frame_is_refused_by_protobuf():
    message = router_pb2.StreamRequest(payload=b"x" * 300).SerializeToString()[:-1]
    with pytest.raises(Exception, match="(?i)error parsing|truncated|decode"):
        decode_request(message)
