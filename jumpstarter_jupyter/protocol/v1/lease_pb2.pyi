from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HoldAnswer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_ANSWER_NONE: _ClassVar[HoldAnswer]
    HOLD_ANSWER_ACCEPT: _ClassVar[HoldAnswer]
    HOLD_ANSWER_DECLINE: _ClassVar[HoldAnswer]

class LeaseEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEASE_EVENT_UNSPECIFIED: _ClassVar[LeaseEventKind]
    LEASE_EVENT_QUEUED: _ClassVar[LeaseEventKind]
    LEASE_EVENT_GRANTED: _ClassVar[LeaseEventKind]
    LEASE_EVENT_EXPIRING: _ClassVar[LeaseEventKind]
    LEASE_EVENT_EXTENDED: _ClassVar[LeaseEventKind]
    LEASE_EVENT_ENDED: _ClassVar[LeaseEventKind]
    LEASE_EVENT_HOOK_OUTPUT: _ClassVar[LeaseEventKind]
    LEASE_EVENT_HANDOVER_REQUESTED: _ClassVar[LeaseEventKind]
    LEASE_EVENT_OFFERED: _ClassVar[LeaseEventKind]
HOLD_ANSWER_NONE: HoldAnswer
HOLD_ANSWER_ACCEPT: HoldAnswer
HOLD_ANSWER_DECLINE: HoldAnswer
LEASE_EVENT_UNSPECIFIED: LeaseEventKind
LEASE_EVENT_QUEUED: LeaseEventKind
LEASE_EVENT_GRANTED: LeaseEventKind
LEASE_EVENT_EXPIRING: LeaseEventKind
LEASE_EVENT_EXTENDED: LeaseEventKind
LEASE_EVENT_ENDED: LeaseEventKind
LEASE_EVENT_HOOK_OUTPUT: LeaseEventKind
LEASE_EVENT_HANDOVER_REQUESTED: LeaseEventKind
LEASE_EVENT_OFFERED: LeaseEventKind

class HoldRequest(_message.Message):
    __slots__ = ("holder", "purpose", "duration", "one_command", "kernel_id", "server", "hub_token", "offers", "answer")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ONE_COMMAND_FIELD_NUMBER: _ClassVar[int]
    KERNEL_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    HUB_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFERS_FIELD_NUMBER: _ClassVar[int]
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    holder: str
    purpose: str
    duration: float
    one_command: bool
    kernel_id: str
    server: str
    hub_token: str
    offers: bool
    answer: HoldAnswer
    def __init__(self, holder: _Optional[str] = ..., purpose: _Optional[str] = ..., duration: _Optional[float] = ..., one_command: bool = ..., kernel_id: _Optional[str] = ..., server: _Optional[str] = ..., hub_token: _Optional[str] = ..., offers: bool = ..., answer: _Optional[_Union[HoldAnswer, str]] = ...) -> None: ...

class LeaseEvent(_message.Message):
    __slots__ = ("kind", "position", "token", "lease", "message")
    KIND_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    kind: LeaseEventKind
    position: int
    token: str
    lease: LeaseInfo
    message: str
    def __init__(self, kind: _Optional[_Union[LeaseEventKind, str]] = ..., position: _Optional[int] = ..., token: _Optional[str] = ..., lease: _Optional[_Union[LeaseInfo, _Mapping]] = ..., message: _Optional[str] = ...) -> None: ...

class LeaseInfo(_message.Message):
    __slots__ = ("holder", "purpose", "since", "expires", "verified", "kernel_id", "server")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    KERNEL_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_FIELD_NUMBER: _ClassVar[int]
    holder: str
    purpose: str
    since: float
    expires: float
    verified: bool
    kernel_id: str
    server: str
    def __init__(self, holder: _Optional[str] = ..., purpose: _Optional[str] = ..., since: _Optional[float] = ..., expires: _Optional[float] = ..., verified: bool = ..., kernel_id: _Optional[str] = ..., server: _Optional[str] = ...) -> None: ...

class Waiter(_message.Message):
    __slots__ = ("holder", "purpose", "since")
    HOLDER_FIELD_NUMBER: _ClassVar[int]
    PURPOSE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    holder: str
    purpose: str
    since: float
    def __init__(self, holder: _Optional[str] = ..., purpose: _Optional[str] = ..., since: _Optional[float] = ...) -> None: ...

class ExtendRequest(_message.Message):
    __slots__ = ("token", "duration")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    token: str
    duration: float
    def __init__(self, token: _Optional[str] = ..., duration: _Optional[float] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("token",)
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    token: str
    def __init__(self, token: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LeaseStatus(_message.Message):
    __slots__ = ("required", "lease", "queue", "heartbeat_seconds", "max_duration", "caller_controls", "hub_identity", "offered")
    REQUIRED_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_DURATION_FIELD_NUMBER: _ClassVar[int]
    CALLER_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    HUB_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    OFFERED_FIELD_NUMBER: _ClassVar[int]
    required: bool
    lease: LeaseInfo
    queue: _containers.RepeatedCompositeFieldContainer[Waiter]
    heartbeat_seconds: float
    max_duration: float
    caller_controls: bool
    hub_identity: bool
    offered: bool
    def __init__(self, required: bool = ..., lease: _Optional[_Union[LeaseInfo, _Mapping]] = ..., queue: _Optional[_Iterable[_Union[Waiter, _Mapping]]] = ..., heartbeat_seconds: _Optional[float] = ..., max_duration: _Optional[float] = ..., caller_controls: bool = ..., hub_identity: bool = ..., offered: bool = ...) -> None: ...

class ForceReleaseRequest(_message.Message):
    __slots__ = ("admin_passphrase",)
    ADMIN_PASSPHRASE_FIELD_NUMBER: _ClassVar[int]
    admin_passphrase: str
    def __init__(self, admin_passphrase: _Optional[str] = ...) -> None: ...

class HandoverRequest(_message.Message):
    __slots__ = ("requester", "message", "hub_token")
    REQUESTER_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    HUB_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requester: str
    message: str
    hub_token: str
    def __init__(self, requester: _Optional[str] = ..., message: _Optional[str] = ..., hub_token: _Optional[str] = ...) -> None: ...

class HandoverResponse(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...
