from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class TransmitRequest(_message.Message):
    __slots__ = ("uuid", "data")
    UUID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    data: bytes
    def __init__(self, uuid: _Optional[str] = ..., data: _Optional[bytes] = ...) -> None: ...

class TransmitAck(_message.Message):
    __slots__ = ("written",)
    WRITTEN_FIELD_NUMBER: _ClassVar[int]
    written: int
    def __init__(self, written: _Optional[int] = ...) -> None: ...

class FollowRequest(_message.Message):
    __slots__ = ("uuid", "offset", "from_end", "snapshot", "epoch")
    UUID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FROM_END_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    offset: int
    from_end: bool
    snapshot: bool
    epoch: str
    def __init__(self, uuid: _Optional[str] = ..., offset: _Optional[int] = ..., from_end: bool = ..., snapshot: bool = ..., epoch: _Optional[str] = ...) -> None: ...

class ConsoleChunk(_message.Message):
    __slots__ = ("offset", "data", "dropped", "event", "epoch")
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    offset: int
    data: bytes
    dropped: int
    event: str
    epoch: str
    def __init__(self, offset: _Optional[int] = ..., data: _Optional[bytes] = ..., dropped: _Optional[int] = ..., event: _Optional[str] = ..., epoch: _Optional[str] = ...) -> None: ...
