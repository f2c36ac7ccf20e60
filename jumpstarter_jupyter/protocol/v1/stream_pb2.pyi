from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StreamFrame(_message.Message):
    __slots__ = ("payload", "goaway", "received", "error")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    GOAWAY_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    goaway: bool
    received: int
    error: str
    def __init__(self, payload: _Optional[bytes] = ..., goaway: bool = ..., received: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
