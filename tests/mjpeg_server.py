"""A loopback HTTP video source speaking ustreamer's documented HTTP API, with synthetic frames.

``/stream`` is ``multipart/x-mixed-replace`` (ustreamer's boundary and part headers), ``/snapshot``
a JPEG of the present frame, ``/state`` ustreamer's JSON. The frames are JPEGs made with Pillow,
each showing its number in large letters (OCR can read it), encoded once up front so the
server costs little CPU while streaming. Stands in for a capture card, which CI machines lack.
"""

from __future__ import annotations

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image, ImageDraw, ImageFont

BOUNDARY = "boundarydonotcross"  # ustreamer's


def synthetic_frames(count: int, size: tuple[int, int], quality: int = 80) -> list[bytes]:
    """``count`` JPEGs of ``size``: a gradient, a moving bar and "FRAME n" in large letters."""
    width, height = size
    font = ImageFont.load_default(size=max(height // 8, 12))
    base = Image.linear_gradient("L").resize(size).convert("RGB")
    frames = []
    for number in range(count):
        picture = base.copy()
        draw = ImageDraw.Draw(picture)
        x = number * width // count
        draw.rectangle((x, height - height // 6, x + width // 10, height), fill=(200, 40, 40))
        draw.rectangle(
            (width // 16, height // 8, width - width // 16, height // 8 + height // 5), fill="white"
        )
        draw.text((width // 12, height // 8), f"FRAME {number}", fill="black", font=font)
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=quality)
        frames.append(out.getvalue())
    return frames


class VideoServer(ThreadingHTTPServer):
    """Serves ``frames`` in a loop at ``fps`` on 127.0.0.1 (a free port): ``url`` is its base."""

    daemon_threads = True

    def __init__(self, frames: list[bytes], fps: float, size: tuple[int, int]):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.frames, self.fps, self.size = frames, fps, size
        self.started = time.monotonic()
        self.streams = 0  # /stream requests served (tests check the feed stops when unwanted)
        self.open_streams = 0
        self._thread = threading.Thread(target=self.serve_forever, name="video server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def current(self) -> bytes:
        return self.frames[int((time.monotonic() - self.started) * self.fps) % len(self.frames)]

    def __enter__(self) -> VideoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: VideoServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass  # quiet: tests read what they assert on

    def do_GET(self) -> None:
        if self.path == "/snapshot":
            self._send("image/jpeg", self.server.current())
        elif self.path == "/state":
            width, height = self.server.size
            state = {
                "ok": True,
                "result": {
                    "encoder": {"type": "CPU", "quality": 80},
                    "source": {
                        "resolution": {"width": width, "height": height},
                        "online": True,
                        "desired_fps": self.server.fps,
                        "captured_fps": self.server.fps,
                    },
                },
            }
            self._send("application/json", json.dumps(state).encode())
        elif self.path.startswith("/stream"):
            self._stream()
        else:
            self._send("text/plain", b"not found", 404)

    def _send(self, content_type: str, body: bytes, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self) -> None:
        self.server.streams += 1
        self.server.open_streams += 1
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
        self.send_header("Connection", "close")
        self.end_headers()
        period = 1.0 / self.server.fps
        try:
            while True:
                frame = self.server.current()
                self.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame)}\r\n"
                    f"X-Timestamp: {time.time():.6f}\r\n\r\n".encode()
                    + frame
                    + b"\r\n"
                )
                self.wfile.flush()
                time.sleep(period)  # the source's own frame period
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            self.server.open_streams -= 1
