"""What a driver author needs: the base class, the export markers, byte streams and waiting."""

from jumpstarter_jupyter.driver.base import Driver, export, exportstream, runtime
from jumpstarter_jupyter.driver.cancel import Cancelled
from jumpstarter_jupyter.driver.streams import ByteStream, LoopStream, SocketStream
from jumpstarter_jupyter.driver.sync import Pipe, Signal

__all__ = [
    "ByteStream",
    "Cancelled",
    "Driver",
    "LoopStream",
    "Pipe",
    "Signal",
    "SocketStream",
    "export",
    "exportstream",
    "runtime",
]
