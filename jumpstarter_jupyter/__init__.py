"""jumpstarter-jupyter: hardware-in-the-loop control from Jupyter, on Jumpstarter's wire protocol.

>>> import jumpstarter_jupyter as jj
>>> dut = jj.connect("127.0.0.1:7777")   # doctest: +SKIP
>>> dut.power.on()                        # doctest: +SKIP
"""

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.errors import (
    AuthenticationFailed,
    ConfigError,
    ConnectionFailed,
    DriverError,
    DriverInvalidArgument,
    DriverMethodNotFound,
    DriverNotImplemented,
    DriverTimeout,
    JumpstarterError,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationFailed",
    "ConfigError",
    "ConnectionFailed",
    "DriverError",
    "DriverInvalidArgument",
    "DriverMethodNotFound",
    "DriverNotImplemented",
    "DriverTimeout",
    "JumpstarterError",
    "__version__",
    "connect",
]
