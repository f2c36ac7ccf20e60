"""jumpstarter-jupyter: hardware-in-the-loop control from Jupyter, on Jumpstarter's wire protocol.

On a lab bench, connect to the host's exporter (this needs one, hence skipped here):

>>> import jumpstarter_jupyter as jj
>>> dut = jj.connect("lab-host:7777")     # doctest: +SKIP
>>> dut.power.on()                        # doctest: +SKIP

Without an endpoint (and without ``$JUMPSTARTER_HOST``), ``connect()`` starts a private
virtual board for this process, stopped with the client:

>>> with jj.connect() as dut:
...     dut.power.on()
...     dut.serial.expect("login:", timeout=60)
0
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
    LeaseRequired,
    LeaseTimeout,
    LeaseUnsatisfiable,
)

__version__ = "0.1.0"


def load_ipython_extension(ipython):
    """``%load_ext jumpstarter_jupyter``: add the ``%jmp`` magic."""
    from jumpstarter_jupyter.jupyter.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext jumpstarter_jupyter``: disconnect and remove ``%jmp``."""
    from jumpstarter_jupyter.jupyter.extension import unload_ipython_extension as unload

    unload(ipython)


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
    "LeaseRequired",
    "LeaseTimeout",
    "LeaseUnsatisfiable",
    "__version__",
    "connect",
]
