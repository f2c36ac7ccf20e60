"""What both ends of a CAN bus share: the frame as upstream sends it, filters, batches.

* :class:`CanMessage` is upstream's wire shape of a frame (an object; ``data`` as base64
  text, numbers as doubles), used by the unary methods both sides speak.
* Filters are python-can's: ``{"can_id": 0x123, "can_mask": 0x7FF, "extended": False}``.
* Between our own ends, frames travel in ``CanFrames`` batches (``can.proto``), each
  message length-prefixed on the ``follow`` byte stream::

    >>> import can
    >>> frame = can.Message(arbitration_id=0x123, data=b"\\xde\\xad", timestamp=1.5)
    >>> batch = pack([frame], channel="vcan0")
    >>> [(hex(m.arbitration_id), bytes(m.data), m.channel) for m in unpack(batch)]
    [('0x123', b'\\xde\\xad', 'vcan0')]
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jumpstarter_jupyter.protocol.codec import Base64Bytes
from jumpstarter_jupyter.protocol.v1 import can_pb2

if TYPE_CHECKING:  # python-can is imported where a frame is built: connect() reads UPSTREAM_CLIENTS here
    import can
    from can.typechecking import CanFilter

CLIENT = "jumpstarter_jupyter.drivers.can.client.CanClient"
UPSTREAM_CLIENT = "jumpstarter_driver_can.client.CanClient"  # what our CAN driver reports
UPSTREAM_CLIENTS = {UPSTREAM_CLIENT: CLIENT}  # upstream client classes -> ours (client.tree reads it)
LENGTH = struct.Struct("<I")  # the length prefix of each message on the follow stream
FLAGS = (  # (Message attribute, CanFlag bit)
    ("is_extended_id", can_pb2.CAN_FLAG_EXTENDED_ID),
    ("is_remote_frame", can_pb2.CAN_FLAG_REMOTE_FRAME),
    ("is_error_frame", can_pb2.CAN_FLAG_ERROR_FRAME),
    ("is_fd", can_pb2.CAN_FLAG_FD),
    ("bitrate_switch", can_pb2.CAN_FLAG_BITRATE_SWITCH),
    ("error_state_indicator", can_pb2.CAN_FLAG_ERROR_STATE_INDICATOR),
)


@dataclass
class CanMessage:
    """One frame as upstream's ``CanMessage`` puts it on the wire (its field names and order)."""

    timestamp: float
    arbitration_id: int
    is_extended_id: bool
    is_remote_frame: bool
    is_error_frame: bool
    channel: int | str | None
    dlc: int | None
    data: Base64Bytes | None
    is_fd: bool
    is_rx: bool
    bitrate_switch: bool
    error_state_indicator: bool

    @classmethod
    def of(cls, msg: can.Message) -> CanMessage:
        """The wire shape of a python-can message."""
        return cls(
            msg.timestamp,
            msg.arbitration_id,
            msg.is_extended_id,
            msg.is_remote_frame,
            msg.is_error_frame,
            msg.channel,
            msg.dlc,
            bytes(msg.data),
            msg.is_fd,
            msg.is_rx,
            msg.bitrate_switch,
            msg.error_state_indicator,
        )

    def message(self) -> can.Message:
        """The python-can message; raises ValueError when the frame is not a valid one."""
        import can

        return can.Message(
            timestamp=self.timestamp,
            arbitration_id=self.arbitration_id,
            is_extended_id=self.is_extended_id,
            is_remote_frame=self.is_remote_frame,
            is_error_frame=self.is_error_frame,
            channel=self.channel,
            dlc=self.dlc,
            data=self.data,
            is_fd=self.is_fd,
            is_rx=self.is_rx,
            bitrate_switch=self.bitrate_switch,
            error_state_indicator=self.error_state_indicator,
            check=True,
        )


def message_from_wire(value: dict) -> can.Message:
    """A frame a peer returned (a decoded ``CanMessage`` object) as a python-can message."""
    import can

    data = value.get("data")
    return can.Message(
        timestamp=value.get("timestamp") or 0.0,
        arbitration_id=int(value["arbitration_id"]),
        is_extended_id=bool(value.get("is_extended_id")),
        is_remote_frame=bool(value.get("is_remote_frame")),
        is_error_frame=bool(value.get("is_error_frame")),
        channel=value.get("channel"),
        dlc=None if value.get("dlc") is None else int(value["dlc"]),
        data=base64.b64decode(data) if data else None,
        is_fd=bool(value.get("is_fd")),
        is_rx=value.get("is_rx", True),
        bitrate_switch=bool(value.get("bitrate_switch")),
        error_state_indicator=bool(value.get("error_state_indicator")),
    )


Compiled = tuple[tuple[int, int, bool | None], ...]  # (can_id & mask, mask, extended) per filter


def compile_filters(filters: Iterable[CanFilter] | None) -> Compiled:
    """Filters ready for :func:`passes`; none (or an empty list) lets every frame pass."""
    out = []
    for index, spec in enumerate(filters or ()):
        try:
            can_id, mask = int(spec["can_id"]), int(spec["can_mask"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"filters[{index}]: expected {{'can_id': int, 'can_mask': int}}, got {spec!r}"
            ) from None
        if not (0 <= can_id < 1 << 29 and 0 <= mask < 1 << 29):
            raise ValueError(f"filters[{index}]: can_id and can_mask must be 29-bit values, got {spec!r}")
        extended = spec.get("extended")
        out.append((can_id & mask, mask, None if extended is None else bool(extended)))
    return tuple(out)


def passes(filters: Compiled, msg: can.Message) -> bool:
    """python-can's rule: any filter matching lets the frame pass."""
    if not filters:
        return True
    ident = msg.arbitration_id
    return any(
        (ident & mask) == want and (extended is None or extended == msg.is_extended_id)
        for want, mask, extended in filters
    )


def filters_message(filters: Compiled) -> list[can_pb2.CanFilter]:
    """Compiled filters as ``CanFilter`` protobuf messages."""
    return [
        can_pb2.CanFilter(can_id=want, can_mask=mask, **({} if ext is None else {"extended": ext}))
        for want, mask, ext in filters
    ]


def filters_of(follow: can_pb2.CanFollow) -> Compiled:
    """The filters a ``CanFollow`` carries."""
    return compile_filters(
        {
            "can_id": f.can_id,
            "can_mask": f.can_mask,
            **({"extended": f.extended} if f.HasField("extended") else {}),
        }
        for f in follow.filters
    )


def pack(frames: Iterable[can.Message], channel: str = "", **fields: int) -> can_pb2.CanFrames:
    """A ``CanFrames`` batch of ``frames`` (columns); ``fields`` sets reader, dropped, position."""
    stamps, ids, flags, dlcs, sizes, data = [], [], [], [], [], []
    for msg in frames:
        stamps.append(msg.timestamp)
        ids.append(msg.arbitration_id)
        bits = 0 if msg.is_rx else can_pb2.CAN_FLAG_TRANSMITTED
        for attribute, bit in FLAGS:
            if getattr(msg, attribute):
                bits |= bit
        flags.append(bits)
        dlcs.append(msg.dlc)
        sizes.append(len(msg.data))
        data.append(msg.data)
    return can_pb2.CanFrames(
        channel=channel,
        timestamp=stamps,
        arbitration_id=ids,
        flags=flags,
        dlc=dlcs,
        size=sizes,
        data=b"".join(data),
        **fields,
    )


def unpack(batch: can_pb2.CanFrames) -> list[can.Message]:
    """The python-can messages of a ``CanFrames`` batch, in bus order."""
    import can

    out, offset, data, channel = [], 0, batch.data, batch.channel or None
    for stamp, ident, bits, dlc, size in zip(
        batch.timestamp, batch.arbitration_id, batch.flags, batch.dlc, batch.size, strict=False
    ):
        out.append(
            can.Message(
                timestamp=stamp,
                arbitration_id=ident,
                is_extended_id=bool(bits & can_pb2.CAN_FLAG_EXTENDED_ID),
                is_remote_frame=bool(bits & can_pb2.CAN_FLAG_REMOTE_FRAME),
                is_error_frame=bool(bits & can_pb2.CAN_FLAG_ERROR_FRAME),
                channel=channel,
                dlc=dlc,
                data=data[offset : offset + size],
                is_fd=bool(bits & can_pb2.CAN_FLAG_FD),
                is_rx=not bits & can_pb2.CAN_FLAG_TRANSMITTED,
                bitrate_switch=bool(bits & can_pb2.CAN_FLAG_BITRATE_SWITCH),
                error_state_indicator=bool(bits & can_pb2.CAN_FLAG_ERROR_STATE_INDICATOR),
            )
        )
        offset += size
    return out


def frame(message) -> bytes:
    """A protobuf message with its length prefix, as the follow stream carries it."""
    body = message.SerializeToString()
    return LENGTH.pack(len(body)) + body


class Framer:
    """Splits follow-stream bytes back into message bodies (writes may be joined or split)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Add bytes; yield each complete message body."""
        self._buffer += data
        start = 0
        while len(self._buffer) - start >= LENGTH.size:
            (size,) = LENGTH.unpack_from(self._buffer, start)
            end = start + LENGTH.size + size
            if end > len(self._buffer):
                break
            yield bytes(self._buffer[start + LENGTH.size : end])
            start = end
        del self._buffer[:start]
