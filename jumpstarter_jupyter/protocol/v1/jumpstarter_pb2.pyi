from google.protobuf import empty_pb2 as _empty_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from jumpstarter_jupyter.protocol.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Endpoint(_message.Message):
    __slots__ = ("endpoint", "certificate", "client_certificate", "client_private_key")
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_CERTIFICATE_FIELD_NUMBER: _ClassVar[int]
    CLIENT_PRIVATE_KEY_FIELD_NUMBER: _ClassVar[int]
    endpoint: str
    certificate: str
    client_certificate: str
    client_private_key: str
    def __init__(self, endpoint: _Optional[str] = ..., certificate: _Optional[str] = ..., client_certificate: _Optional[str] = ..., client_private_key: _Optional[str] = ...) -> None: ...

class DriverInstanceReport(_message.Message):
    __slots__ = ("uuid", "parent_uuid", "labels", "description", "methods_description")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class MethodsDescriptionEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    UUID_FIELD_NUMBER: _ClassVar[int]
    PARENT_UUID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    METHODS_DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    parent_uuid: str
    labels: _containers.ScalarMap[str, str]
    description: str
    methods_description: _containers.ScalarMap[str, str]
    def __init__(self, uuid: _Optional[str] = ..., parent_uuid: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., description: _Optional[str] = ..., methods_description: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetReportResponse(_message.Message):
    __slots__ = ("uuid", "labels", "reports", "alternative_endpoints")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    UUID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    ALTERNATIVE_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    labels: _containers.ScalarMap[str, str]
    reports: _containers.RepeatedCompositeFieldContainer[DriverInstanceReport]
    alternative_endpoints: _containers.RepeatedCompositeFieldContainer[Endpoint]
    def __init__(self, uuid: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., reports: _Optional[_Iterable[_Union[DriverInstanceReport, _Mapping]]] = ..., alternative_endpoints: _Optional[_Iterable[_Union[Endpoint, _Mapping]]] = ...) -> None: ...

class DriverCallRequest(_message.Message):
    __slots__ = ("uuid", "method", "args")
    UUID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    method: str
    args: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, uuid: _Optional[str] = ..., method: _Optional[str] = ..., args: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class DriverCallResponse(_message.Message):
    __slots__ = ("uuid", "result")
    UUID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    result: _struct_pb2.Value
    def __init__(self, uuid: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class StreamingDriverCallRequest(_message.Message):
    __slots__ = ("uuid", "method", "args")
    UUID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    method: str
    args: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, uuid: _Optional[str] = ..., method: _Optional[str] = ..., args: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class StreamingDriverCallResponse(_message.Message):
    __slots__ = ("uuid", "result")
    UUID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    result: _struct_pb2.Value
    def __init__(self, uuid: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class LogStreamResponse(_message.Message):
    __slots__ = ("uuid", "severity", "message", "source")
    UUID_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    uuid: str
    severity: str
    message: str
    source: _common_pb2.LogSource
    def __init__(self, uuid: _Optional[str] = ..., severity: _Optional[str] = ..., message: _Optional[str] = ..., source: _Optional[_Union[_common_pb2.LogSource, str]] = ...) -> None: ...

class ResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("status", "message", "status_version", "previous_status")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_VERSION_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    status: _common_pb2.ExporterStatus
    message: str
    status_version: int
    previous_status: _common_pb2.ExporterStatus
    def __init__(self, status: _Optional[_Union[_common_pb2.ExporterStatus, str]] = ..., message: _Optional[str] = ..., status_version: _Optional[int] = ..., previous_status: _Optional[_Union[_common_pb2.ExporterStatus, str]] = ...) -> None: ...

class EndSessionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EndSessionResponse(_message.Message):
    __slots__ = ("success", "message")
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    success: bool
    message: str
    def __init__(self, success: bool = ..., message: _Optional[str] = ...) -> None: ...
