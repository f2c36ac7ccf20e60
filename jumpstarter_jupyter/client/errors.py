"""gRPC statuses back to our exceptions: one table, applied in one place."""

from __future__ import annotations

import grpc

from jumpstarter_jupyter import errors
from jumpstarter_jupyter.protocol.metadata import EXCEPTION_KEY, UNKNOWN_DRIVER

ERROR_FOR_STATUS = {
    grpc.StatusCode.NOT_FOUND: errors.DriverMethodNotFound,
    grpc.StatusCode.UNIMPLEMENTED: errors.DriverNotImplemented,
    grpc.StatusCode.INVALID_ARGUMENT: errors.DriverInvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DriverTimeout,
    grpc.StatusCode.FAILED_PRECONDITION: errors.LeaseRequired,
}
ERROR_FOR_REMOTE_TYPE = {"TypeError": errors.DriverInvalidArgument}


def remote_type(err: grpc.RpcError) -> str | None:
    """The exception type our exporter named in trailing metadata (None from upstream)."""
    try:
        trailers = err.trailing_metadata() or ()
    except Exception:
        return None
    return dict(trailers).get(EXCEPTION_KEY)


def is_unknown_driver(err: grpc.RpcError) -> bool:
    """True when the exporter no longer knows the driver UUID (it restarted)."""
    if remote_type(err) == UNKNOWN_DRIVER:
        return True
    details = err.details() or ""
    return err.code() == grpc.StatusCode.UNKNOWN and "KeyError" in details and "UUID(" in details


def translate(err: grpc.RpcError, endpoint: str, path: str, method: str) -> errors.JumpstarterError:
    """Build the exception a user sees for a failed call of ``path.method``."""
    code, details = err.code(), err.details() or ""
    if code == grpc.StatusCode.UNAVAILABLE:
        return errors.ConnectionFailed(
            f"{path}.{method}: exporter at {endpoint} is not reachable ({details}); "
            "is it running? Calls work again once it is back."
        )
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return errors.AuthenticationFailed(
            f"exporter at {endpoint} refused the connection: {details} "
            "(pass passphrase=... or set $JMP_GRPC_PASSPHRASE)"
        )
    if code == grpc.StatusCode.CANCELLED:
        return errors.ConnectionFailed(f"{path}.{method}: call cancelled ({details})")
    kind = remote_type(err)
    cls = ERROR_FOR_REMOTE_TYPE.get(kind) or ERROR_FOR_STATUS.get(code, errors.DriverError)
    return cls(path, method, details or code.name, kind)
