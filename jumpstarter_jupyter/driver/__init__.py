"""What a driver author needs: the base class, the export markers and byte streams."""

from jumpstarter_jupyter.driver.base import Driver, export, exportstream
from jumpstarter_jupyter.driver.streams import ByteStream, LoopStream, SocketStream

__all__ = ["ByteStream", "Driver", "LoopStream", "SocketStream", "export", "exportstream"]
