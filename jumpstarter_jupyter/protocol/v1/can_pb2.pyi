from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CanFlag(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAN_FLAG_NONE: _ClassVar[CanFlag]
    CAN_FLAG_EXTENDED_ID: _ClassVar[CanFlag]
    CAN_FLAG_REMOTE_FRAME: _ClassVar[CanFlag]
    CAN_FLAG_ERROR_FRAME: _ClassVar[CanFlag]
    CAN_FLAG_FD: _ClassVar[CanFlag]
    CAN_FLAG_BITRATE_SWITCH: _ClassVar[CanFlag]
    CAN_FLAG_ERROR_STATE_INDICATOR: _ClassVar[CanFlag]
    CAN_FLAG_TRANSMITTED: _ClassVar[CanFlag]
CAN_FLAG_NONE: CanFlag
CAN_FLAG_EXTENDED_ID: CanFlag
CAN_FLAG_REMOTE_FRAME: CanFlag
CAN_FLAG_ERROR_FRAME: CanFlag
CAN_FLAG_FD: CanFlag
CAN_FLAG_BITRATE_SWITCH: CanFlag
CAN_FLAG_ERROR_STATE_INDICATOR: CanFlag
CAN_FLAG_TRANSMITTED: CanFlag

class CanFilter(_message.Message):
    __slots__ = ("can_id", "can_mask", "extended")
    CAN_ID_FIELD_NUMBER: _ClassVar[int]
    CAN_MASK_FIELD_NUMBER: _ClassVar[int]
    EXTENDED_FIELD_NUMBER: _ClassVar[int]
    can_id: int
    can_mask: int
    extended: bool
    def __init__(self, can_id: _Optional[int] = ..., can_mask: _Optional[int] = ..., extended: bool = ...) -> None: ...

class CanFollow(_message.Message):
    __slots__ = ("filters", "receive_own_messages", "start")
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    RECEIVE_OWN_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    filters: _containers.RepeatedCompositeFieldContainer[CanFilter]
    receive_own_messages: bool
    start: int
    def __init__(self, filters: _Optional[_Iterable[_Union[CanFilter, _Mapping]]] = ..., receive_own_messages: bool = ..., start: _Optional[int] = ...) -> None: ...

class CanFrames(_message.Message):
    __slots__ = ("reader", "dropped", "channel", "position", "timestamp", "arbitration_id", "flags", "dlc", "size", "data")
    READER_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    ARBITRATION_ID_FIELD_NUMBER: _ClassVar[int]
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    DLC_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    reader: int
    dropped: int
    channel: str
    position: int
    timestamp: _containers.RepeatedScalarFieldContainer[float]
    arbitration_id: _containers.RepeatedScalarFieldContainer[int]
    flags: _containers.RepeatedScalarFieldContainer[int]
    dlc: _containers.RepeatedScalarFieldContainer[int]
    size: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    def __init__(self, reader: _Optional[int] = ..., dropped: _Optional[int] = ..., channel: _Optional[str] = ..., position: _Optional[int] = ..., timestamp: _Optional[_Iterable[float]] = ..., arbitration_id: _Optional[_Iterable[int]] = ..., flags: _Optional[_Iterable[int]] = ..., dlc: _Optional[_Iterable[int]] = ..., size: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ...) -> None: ...
