"""RouterService.Stream's data frames without protobuf's copies.

A data frame (``StreamRequest`` or ``StreamResponse`` with only ``payload`` set; its
``frame_type`` is DATA, proto3's default, so it is not on the wire) is the payload's field
header (tag 1, length-delimited) followed by the payload. Building it by hand costs one copy of
the payload where protobuf's object plus ``SerializeToString`` cost two, and reading it gives a
view of the payload inside the received message where protobuf's parse plus ``.payload`` copy
it again. A flashed image crosses these frames hundreds of times per second, so each copy shows.
The bytes are exactly protobuf's (tests compare them): peers, upstream's included, see no
difference. Any other frame (GOAWAY, a frame type set) goes through protobuf.
"""

from __future__ import annotations

from jumpstarter_jupyter.protocol.v1 import router_pb2

PAYLOAD_TAG = b"\x0a"  # field 1 (payload), wire type 2 (length-delimited)
GOAWAY_REQUEST = router_pb2.StreamRequest(frame_type=router_pb2.FRAME_TYPE_GOAWAY).SerializeToString()


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_data(payload: bytes) -> bytes:
    """The serialized data frame carrying ``payload``: what
    ``StreamRequest(payload=payload).SerializeToString()`` gives, for one copy of ``payload``.

    >>> encode_data(b"hi") == router_pb2.StreamRequest(payload=b"hi").SerializeToString()
    True
    """
    if not payload:
        return b""  # proto3 leaves an empty payload out
    return b"".join((PAYLOAD_TAG, _varint(len(payload)), payload))


def decode_request(message: bytes) -> memoryview | router_pb2.StreamRequest:
    """A received ``StreamRequest``: a view of its payload when it is a plain data frame, else
    the parsed message (GOAWAY, other frame types, any encoding we do not take apart here).

    >>> bytes(decode_request(encode_data(b"hi")))
    b'hi'
    >>> decode_request(GOAWAY_REQUEST).frame_type == router_pb2.FRAME_TYPE_GOAWAY
    True
    """
    length, start = _payload_header(message)
    if length is not None and start + length == len(message):
        return memoryview(message)[start:]
    return router_pb2.StreamRequest.FromString(message)


def _payload_header(message: bytes) -> tuple[int | None, int]:
    """(payload length, offset of the payload) if ``message`` opens with the payload field."""
    if not message.startswith(PAYLOAD_TAG):
        return None, 0
    length, shift = 0, 0
    for index in range(1, min(len(message), 11)):
        byte = message[index]
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return length, index + 1
        shift += 7
    return None, 0
