"""The lab's server side: a Jupyter Server extension the devices sidebar asks about the pool.

Its REST handlers sit under the server's base URL (``{base_url}jumpstarter/...``) and are
authenticated like every Jupyter API (a token, the login cookie, or JupyterHub's OAuth), so
the browser never talks gRPC and never sees a passphrase. The wheel enables it through
``etc/jupyter/jupyter_server_config.d/jumpstarter_jupyter.json``.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "jumpstarter_jupyter.lab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    from jumpstarter_jupyter.lab.handlers import setup_handlers

    setup_handlers(server_app)
    server_app.log.info("jumpstarter-jupyter: devices API under %sjumpstarter/", server_app.base_url)
