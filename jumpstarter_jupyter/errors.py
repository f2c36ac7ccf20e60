"""Exceptions users catch.

Every error that crosses the wire names the driver path and the method. Each one also
inherits the builtin it stands for, so ``except ValueError`` keeps working::

    JumpstarterError
    ├── ConfigError (ValueError)             bad exporter YAML: file, YAML path, line
    ├── ConnectionFailed (ConnectionError)   exporter not reachable, or gone mid-call
    ├── AuthenticationFailed (PermissionError)  wrong or missing passphrase
    ├── LeaseTimeout (TimeoutError)          no lease within the wait asked for
    ├── LeaseUnsatisfiable (LookupError)     a controller has no exporter for the selector
    └── DriverError                          a driver call failed on the exporter
        ├── DriverMethodNotFound (AttributeError)   no such exported method
        ├── DriverNotImplemented (NotImplementedError)
        ├── DriverInvalidArgument (ValueError)      bad argument count, type or value
        ├── DriverTimeout (TimeoutError)
        └── LeaseRequired (PermissionError)         control without the board's lease
"""

from __future__ import annotations


class JumpstarterError(Exception):
    """Base class of every jumpstarter-jupyter error."""


class ConfigError(JumpstarterError, ValueError):
    """An exporter configuration is invalid; the message names file, YAML path and line."""


class ConnectionFailed(JumpstarterError, ConnectionError):
    """The exporter cannot be reached, or the connection broke during a call."""


class AuthenticationFailed(JumpstarterError, PermissionError):
    """The exporter refused the passphrase (gRPC UNAUTHENTICATED)."""


class LeaseTimeout(JumpstarterError, TimeoutError):
    """No lease was granted within the wait asked for; the message says who holds the board."""


class LeaseUnsatisfiable(JumpstarterError, LookupError):
    """An upstream controller will never grant the lease (no exporter matches the selector, or
    the client may not use one): the message names the controller, the selector and the reason."""


class DriverError(JumpstarterError):
    """A driver call failed; ``path`` and ``method`` say where, ``reason`` says why."""

    def __init__(self, path: str, method: str, reason: str, remote_type: str | None = None):
        self.path, self.method, self.reason, self.remote_type = path, method, reason, remote_type
        where = f"{path}.{method}" if path else method
        kind = f" [{remote_type}]" if remote_type else ""
        super().__init__(f"{where}: {reason}{kind}")


class DriverMethodNotFound(DriverError, AttributeError):
    """The driver exports no method of that name (or not of that kind)."""


class DriverNotImplemented(DriverError, NotImplementedError):
    """The driver does not implement the method."""


class DriverInvalidArgument(DriverError, ValueError):
    """The arguments were wrong: count, type or value."""


class DriverTimeout(DriverError, TimeoutError):
    """The driver gave up waiting (gRPC DEADLINE_EXCEEDED)."""


class LeaseRequired(DriverError, PermissionError):
    """The exporter needs a lease for this call and the caller does not hold it (gRPC
    FAILED_PRECONDITION); the message names the holder: ``held by alice@lab (bring-up), 12 min left``."""
