"""The client for drivers we have no class for: any exported method, called by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from jumpstarter_jupyter.client.base import DriverClient


class GenericClient(DriverClient):
    """Calls any exported method by name: ``client.flash("img")`` or ``client.call("flash", "img")``.

    Against our exporters the published method list drives tab completion, keyword
    arguments and the CLI; against upstream exporters any name is tried as a unary call.
    """

    widget = "jumpstarter_jupyter.jupyter.generic.GenericWidget"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in self.__dict__.get("children", {}):
            return super().__getattr__(name)
        return self.method(name)  # DriverMethodNotFound (an AttributeError) when not exported

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(self.methods or {})})

    def method(self, name: str) -> Callable[..., Any]:
        """A callable for exported method ``name``, dispatched by its kind."""
        described = self.require_method(name)
        kind = described.get("kind", "call")

        def invoke(*args: Any, **kwargs: Any) -> Any:
            if kind == "streaming":
                return self.streamingcall(name, *args, **kwargs)
            if kind == "stream":
                return self.stream(name)
            result = self.call(name, *args, **kwargs)
            # numbers travel as doubles: give back the int the method's published return type says
            if described.get("returns") == "int" and isinstance(result, float) and result.is_integer():
                return int(result)
            return result

        invoke.__name__ = name
        invoke.__doc__ = (self.methods or {}).get(name, {}).get("doc")
        return invoke

    def cli(self) -> click.Group:
        group = super().cli()
        for described in (self.methods or {}).values():
            if described.get("kind") != "stream":
                group.add_command(_method_command(self, described))
        return group


def _method_command(client: GenericClient, described: dict) -> click.Command:
    name = described["name"]

    def run(**values: Any) -> None:
        args = [_parse(values[p["name"]]) for p in described["params"] if values.get(p["name"]) is not None]
        result = client.method(name)(*args)
        if described.get("kind") == "streaming":
            for item in result:
                click.echo(item)
        elif result is not None:
            click.echo(result)

    params = [click.Argument([p["name"]], required="default" not in p) for p in described["params"]]
    help_text = client.methods_description.get(name.replace("_", "-")) or described.get("doc")
    return click.Command(name.replace("_", "-"), callback=run, params=params, help=help_text)


def _parse(text: str) -> Any:
    """Command-line text to a value: numbers, true/false/null, else the text itself."""
    import json

    try:
        return json.loads(text)
    except ValueError:
        return text
