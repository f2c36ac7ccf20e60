"""``HttpVideo``: a screen seen through HTTP, as an MJPEG stream and, optionally, a JPEG snapshot URL.

This is what ustreamer serves from an HDMI or USB capture, and what IP cameras offer
(``multipart/x-mixed-replace``). The stream is read only while someone asks for frames: a
reader on the exporter's event loop keeps the newest picture and stops ``IDLE`` seconds after
the last request, so an idle exporter does not pull video.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

import aiohttp

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.screen.driver import FrameStore, ScreenInterface, check_wait, encoded

IDLE = 10.0  # seconds after the last frame request before the stream is closed
RETRY = 1.0  # seconds between attempts while the stream fails
FRESH = 1.0  # seconds a streamed frame counts as the present picture for snapshot()


class MjpegFeed:
    """Reads a ``multipart/x-mixed-replace`` stream into a :class:`FrameStore` while it is wanted."""

    def __init__(self, url: str, connector: Callable[[], aiohttp.BaseConnector | None], timeout: float):
        self.url, self._connector, self.timeout = url, connector, timeout
        self.store = FrameStore()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wanted_at = 0.0
        self.floor = 0  # frames up to this one are from an earlier reading: not the present picture

    def want(self) -> None:
        """Someone asks for frames: read the stream (on the running loop) if it is not read yet."""
        self._wanted_at = time.monotonic()
        if self._task is None or self._task.done():
            self.floor = self.store.latest.seq if self.store.latest else 0
            self.store.fail("")  # an earlier reading's failure is not news
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name=f"mjpeg {self.url}")

    async def _run(self) -> None:
        while time.monotonic() - self._wanted_at < IDLE:
            try:
                await self._read()
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
                self.store.fail(f"{self.url}: {exc or type(exc).__name__}")
                await asyncio.sleep(RETRY)  # the pause between attempts, not a wait for a condition

    async def _read(self) -> None:
        timeout = aiohttp.ClientTimeout(connect=self.timeout, sock_read=self.timeout)
        async with (
            aiohttp.ClientSession(connector=self._connector(), timeout=timeout) as session,
            session.get(self.url) as response,
        ):
            response.raise_for_status()
            if not response.content_type.startswith("multipart/"):
                raise ValueError(f"not an MJPEG stream: Content-Type {response.content_type}")
            reader = aiohttp.MultipartReader.from_response(response)
            while time.monotonic() - self._wanted_at < IDLE:
                part = await reader.next()
                if part is None:
                    raise ValueError("the stream ended")
                self.store.put(bytes(await part.read()))

    def stop(self) -> None:
        """Stop reading (from any thread)."""
        task, loop = self._task, self._loop
        if task is not None and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


@dataclass
class HttpVideo(ScreenInterface):
    """An MJPEG source over HTTP.

    Config (upstream ``jumpstarter_driver_video.driver.HttpVideo``'s names): ``url`` (the
    ``multipart/x-mixed-replace`` stream), ``snapshot_url`` (a JPEG of the present picture;
    without it, snapshots come from the stream); ours: ``timeout`` (seconds to connect and
    between frames).
    """

    upstream_client = "jumpstarter_driver_video.client.VideoClient"  # upstream's, after 0.9.0

    url: str = ""
    snapshot_url: str | None = None
    timeout: float = 10.0
    feed: MjpegFeed = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("url", "snapshot_url"):
            value = getattr(self, name)
            parsed = urlparse(value or "")
            if (value or name == "url") and (parsed.scheme not in ("http", "https") or not parsed.hostname):
                raise ValueError(f"{name} must be an http:// or https:// URL with a host, got {value!r}")
        self.feed = MjpegFeed(self.url, self._connector, self.timeout)

    @property
    def source(self) -> str:
        return f"{type(self).__name__} {self.url}"

    def _connector(self) -> aiohttp.BaseConnector | None:
        return None  # TCP; UStreamer's goes through a unix socket

    @export
    async def snapshot(self) -> str:
        """The present picture as base64 JPEG: from ``snapshot_url``, else the stream's newest frame."""
        if self.snapshot_url:
            return base64.b64encode(await self._get(self.snapshot_url)).decode("ascii")
        self.feed.want()
        frame = self.feed.store.newer(self.feed.floor)
        if frame is None or time.monotonic() - self.feed.store.arrivals[-1] > FRESH:
            frame = await self.feed.store.wait_async(
                max(self.feed.floor, frame.seq if frame else 0), self.timeout
            )
        if frame is None:
            raise ConnectionError(
                f"{self.source}: no frame within {self.timeout} s: "
                f"{self.feed.store.error or 'the stream sent nothing'}"
            )
        return encoded(frame)

    @export
    async def frame(self, after: int = 0, timeout: float = 1.0) -> dict | None:
        """The newest streamed frame above ``after``, waiting up to ``timeout`` seconds; None if none came."""
        check_wait(after, timeout)
        self.feed.want()
        frame = await self.feed.store.wait_async(max(after, self.feed.floor), timeout)
        if frame is None and self.feed.store.error:
            raise ConnectionError(f"{self.source}: {self.feed.store.error}")
        return frame.to_wire() if frame else None

    @export
    async def state(self) -> dict:
        """``online``, ``width``, ``height``, ``fps`` of the stream as last read, ``error``; no keyboard."""
        return {"source": self.source, "keyboard": False, **self.feed.store.state()}

    async def _get(self, url: str) -> bytes:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with (
                aiohttp.ClientSession(connector=self._connector(), timeout=timeout) as session,
                session.get(url) as response,
            ):
                response.raise_for_status()
                return await response.read()
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            raise ConnectionError(f"{self.source}: GET {url}: {exc or type(exc).__name__}") from None

    def teardown(self) -> None:
        self.feed.stop()
        super().teardown()
