"""REST handlers of the devices sidebar and the status bar (all JSON, all authenticated).

GET  {base}jumpstarter/boards[?selector=S]          every pool board's state (and whether S matches it)
POST {base}jumpstarter/boards/NAME/handover         ask the holder for the board
POST {base}jumpstarter/boards/NAME/force-release    end the lease with the pool's admin credential
GET  {base}jumpstarter/proxy                        whether forwards can be opened through this server
"""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import unquote

import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.lab.monitor import PoolMonitor

PROXY_FLOOR = (4, 1, 1)  # older jupyter-server-proxy accepts unauthenticated websockets (a CVE)


class _Handler(APIHandler):
    @property
    def monitor(self) -> PoolMonitor:
        return self.settings["jumpstarter_monitor"]

    async def _answer(self, work, *args: Any) -> None:
        """Run ``work(*args)`` off the event loop; errors become JSON with a fitting status."""
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, work, *args)
        except KeyError as exc:
            raise tornado.web.HTTPError(404, exc.args[0]) from None
        except PermissionError as exc:
            raise tornado.web.HTTPError(403, str(exc)) from None
        except JumpstarterError as exc:
            raise tornado.web.HTTPError(409, str(exc)) from None
        self.finish(json.dumps(result if isinstance(result, dict) else {"message": result}))


class BoardsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self._answer(self.monitor.boards, self.get_argument("selector", ""))


class HandoverHandler(_Handler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self._answer(self.monitor.request_handover, unquote(name))


class ForceReleaseHandler(_Handler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        await self._answer(self.monitor.force_release, unquote(name))


class ProxyHandler(_Handler):
    @tornado.web.authenticated
    def get(self) -> None:
        self.finish(json.dumps(proxy_support(self.settings.get("jumpstarter_extensions", ()))))


def proxy_support(extensions) -> dict:
    """Whether ``{base_url}proxy/PORT/`` reaches the kernel's forwards, and if not, why."""
    try:
        installed = version("jupyter-server-proxy")
    except PackageNotFoundError:
        return {
            "available": False,
            "why": "install jupyter-server-proxy >= 4.1.1 on the server for links the browser can open",
        }
    numbers = tuple(int(part) for part in installed.split(".")[:3] if part.isdigit())
    if numbers < PROXY_FLOOR:
        return {
            "available": False,
            "version": installed,
            "why": f"jupyter-server-proxy {installed} is too old (unauthenticated websockets); need >= 4.1.1",
        }
    if "jupyter_server_proxy" not in extensions:
        return {
            "available": False,
            "version": installed,
            "why": "jupyter-server-proxy is installed but not enabled",
        }
    return {"available": True, "version": installed}


def setup_handlers(server_app: Any) -> None:
    web_app = server_app.web_app
    monitor = PoolMonitor()
    web_app.settings["jumpstarter_monitor"] = monitor
    web_app.settings["jumpstarter_extensions"] = {
        name for name, ext in server_app.extension_manager.extensions.items() if ext.enabled
    }
    base = url_path_join(web_app.settings["base_url"], "jumpstarter")
    board = r"/boards/(?P<name>[^/]+)"
    web_app.add_handlers(
        ".*$",
        [
            (url_path_join(base, "boards"), BoardsHandler),
            (url_path_join(base, board + "/handover"), HandoverHandler),
            (url_path_join(base, board + "/force-release"), ForceReleaseHandler),
            (url_path_join(base, "proxy"), ProxyHandler),
        ],
    )
