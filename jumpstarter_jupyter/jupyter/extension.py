"""The IPython extension: ``%load_ext jumpstarter`` (or ``jumpstarter_jupyter``) adds ``%jmp``.

``%unload_ext`` closes every connection ``%jmp connect`` made (stopping a private board).
"""

from __future__ import annotations

from typing import Any

from jumpstarter_jupyter.jupyter.magics import JumpstarterMagics

_loaded: dict[int, JumpstarterMagics] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%jmp`` magic on ``ipython`` (a no-op when already loaded)."""
    if id(ipython) in _loaded:
        return
    magics = JumpstarterMagics(ipython)
    ipython.register_magics(magics)
    _loaded[id(ipython)] = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Disconnect everything ``%jmp`` connected and remove the magic."""
    magics = _loaded.pop(id(ipython), None)
    if magics is None:
        return
    magics.disconnect_all()
    ipython.magics_manager.magics["line"].pop("jmp", None)
