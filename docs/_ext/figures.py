"""Tables the docs generate rather than copy: figures from dated JSON, driver config keys, client methods.

Directives (usable from MyST as ```{bench-table}``` etc.):

``bench-table``
    ``docs/_data/bench.json`` as ``make bench`` wrote it (``benchmarks/run.py``): one row per
    figure with each side's median, the ratios and each target met or missed, and under it the
    machine and date of the run. A quick run (``make bench QUICK=1``) is marked as a harness
    check whose numbers claim nothing.
``soak-table``
    ``docs/_data/soak.json`` as ``make soak`` wrote it (``benchmarks/soak.py``).
``config-keys`` *dotted.DriverClass*
    The driver's config keys: its dataclass fields that YAML may set, with type and default.
``client-methods`` *dotted.ClientClass*
    The client's public methods, each with the first line of its docstring and a link to the
    API reference.

Every table is rebuilt when its JSON file changes (a Sphinx dependency).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import re
import typing
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

VERDICTS = {True: "met", False: "MISSED", None: "not measured"}


def table(
    header: list[str], rows: list[list[nodes.Node | str]], widths: list[int] | None = None
) -> nodes.table:
    """A docutils table of ``header`` and ``rows`` (cells are text or inline nodes)."""
    group = nodes.tgroup(cols=len(header))
    for width in widths or [1] * len(header):
        group += nodes.colspec(colwidth=width)
    head, body = nodes.thead(), nodes.tbody()
    for target, cells in ((head, [header]), (body, rows)):
        for cells_of_row in cells:
            row = nodes.row()
            for cell in cells_of_row:
                entry = nodes.entry()
                paragraph = nodes.paragraph()
                paragraph += cell if isinstance(cell, nodes.Node) else nodes.Text(str(cell))
                entry += paragraph
                row += entry
            target += row
    group += head
    group += body
    result = nodes.table()
    result += group
    return result


def number(value: float | None) -> str:
    """As ``benchmarks/table.py`` prints them: thousands spaced, else three significant digits."""
    if value is None:
        return "-"
    # a narrow no-break space between thousands: a figure never wraps inside a table cell
    return f"{value:,.0f}".replace(",", "\u202f") if value >= 100 else f"{value:.3g}"


def ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


class DataDirective(SphinxDirective):
    """A table read from ``docs/_data/<file>``; a missing file is an error naming the command."""

    file = ""
    command = ""
    has_content = False

    def load(self) -> dict:
        path = Path(self.env.srcdir) / "_data" / self.file
        if not path.exists():
            raise self.error(f"{path} is missing: `{self.command}` writes it")
        self.env.note_dependency(str(path))
        return json.loads(path.read_text())

    def measured_on(self, result: dict) -> nodes.paragraph:
        machine = result["machine"]
        text = (
            f"Measured {machine['date']} on {machine['cpu']}, {machine['cores']} cores, "
            f"{machine['memory_gib']} GiB, {machine['os']}, Python {machine['python']}"
        )
        if machine.get("grpcio_ours"):
            text += f", grpcio {machine['grpcio_ours']}"
        if machine.get("jumpstarter_upstream"):
            text += (
                f"; upstream Jumpstarter {machine['jumpstarter_upstream']} "
                f"(grpcio {machine.get('grpcio_upstream', 'unknown')})"
            )
        paragraph = nodes.paragraph(text=text + " (")
        paragraph += nodes.literal(text=self.command)
        paragraph += nodes.Text(", written to ")
        paragraph += nodes.literal(text=f"docs/_data/{self.file}")
        paragraph += nodes.Text(").")
        return paragraph

    def quick_warning(self, command: str, what: str) -> nodes.Node:
        note, paragraph = nodes.warning(), nodes.paragraph()
        paragraph += nodes.Text("These figures come from a quick harness check (")
        paragraph += nodes.literal(text=command)
        paragraph += nodes.Text(
            f", {what}): they show that every measurement runs and what it reports, and claim "
            "nothing about performance. A full run replaces them."
        )
        note += paragraph
        return note


class BenchTable(DataDirective):
    file, command = "bench.json", "make bench"

    def run(self) -> list[nodes.Node]:
        result = self.load()
        rows, targets = [], []
        for row in result["rows"]:
            sides, ratios = row["sides"], row["ratios"]
            raw = number(sides.get("raw", {}).get("median"))
            for extra in ("raw aio", "raw socket"):
                if extra in sides:
                    raw += f" ({extra.split()[1]} {number(sides[extra]['median'])})"
            faster_raw = [ratios[key] for key in ("ours/raw", "ours/raw aio") if key in ratios]
            targets.extend(
                [row["title"], target["target"], VERDICTS[target["met"]]] for target in row["targets"]
            )
            rows.append(
                [
                    row["title"],
                    row["unit"],
                    number(sides.get("ours", {}).get("median")),
                    number(sides.get("upstream", {}).get("median")),
                    raw,
                    ratio(ratios.get("ours/upstream")),
                    ratio(min(faster_raw) if faster_raw else None),
                ]
            )
        output: list[nodes.Node] = []
        if result.get("quick"):
            output.append(self.quick_warning("make bench QUICK=1", "one round of small sizes"))
        output.append(
            table(
                ["figure", "unit", "ours", "upstream", "raw ceiling", "ours/upstream", "ours/raw"],
                rows,
                [30, 8, 8, 8, 14, 8, 8],
            )
        )
        output.append(nodes.paragraph(text="Each target, against the figures above:"))
        output.append(table(["figure", "target", "result"], targets, [35, 45, 20]))
        output.append(self.measured_on(result))
        output.append(
            nodes.paragraph(
                text=f"{result['rounds']} round(s) per figure, medians; the run took "
                f"{result['seconds']:.0f} s."
            )
        )
        if result.get("errors"):
            output.append(
                nodes.paragraph(
                    text=f"{len(result['errors'])} measurement(s) failed in this run: "
                    + "; ".join(result["errors"])
                )
            )
        return output


class SoakTable(DataDirective):
    file, command = "soak.json", "make soak"

    def run(self) -> list[nodes.Node]:
        result = self.load()
        output: list[nodes.Node] = []
        if result.get("quick"):
            output.append(
                self.quick_warning(
                    "make soak", f"{result['minutes']} minutes with {result['clients']} clients"
                )
            )
        before, after = result["before"], result["after"]
        rows = [
            ["duration", f"{result['minutes']} min", ""],
            ["clients", str(result["clients"]), ""],
            ["unary calls", f"{result['calls']:,}".replace(",", "\u202f"), ""],
            ["bytes through byte streams", f"{result['stream_mib']:,} MiB".replace(",", "\u202f"), ""],
            ["client errors", str(result["errors"]), ""],
            ["exporter threads", str(before["threads"]), str(after["threads"])],
            ["exporter file descriptors", str(before["fds"]), str(after["fds"])],
            ["exporter RSS", f"{before['rss_mb']} MB", f"{after['rss_mb']} MB"],
        ]
        output.append(table(["figure", "value (before the run)", "after the run"], rows, [30, 15, 15]))
        output.append(self.measured_on(result))
        return output


def inline(text: str) -> nodes.inline:
    """Docstring text with its ``literals`` and :role:`targets` shown as code."""
    result = nodes.inline()
    for index, part in enumerate(re.split(r"``(.+?)``|:\w+:`~?(.+?)`", text)):
        if part is None:
            continue
        result += nodes.literal(text=part) if index % 3 else nodes.Text(part)
    return result


def import_object(dotted: str):
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def type_text(hint) -> str:
    if isinstance(hint, str):
        return hint
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


class ConfigKeys(SphinxDirective):
    """The YAML ``config:`` keys of a driver class: its init fields, with type and default."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        cls = import_object(self.arguments[0])
        hints = typing.get_type_hints(cls)
        rows = []
        for field in dataclasses.fields(cls):
            if not field.init or field.name.startswith("_"):
                continue
            if field.default is not dataclasses.MISSING:
                default = repr(field.default)
            elif field.default_factory is not dataclasses.MISSING:
                default = repr(field.default_factory())
            else:
                default = "required"
            rows.append(
                [nodes.literal(text=field.name), type_text(hints.get(field.name, field.type)), default]
            )
        if not rows:
            return [nodes.paragraph(text=f"{cls.__name__} takes no config keys.")]
        return [table(["key", "type", "default"], rows, [20, 30, 30])]


class ClientMethods(SphinxDirective):
    """The public methods of a client class (its own, not the base class's), linked to the API."""

    required_arguments = 1
    option_spec = {"inherited": directives.flag}

    def run(self) -> list[nodes.Node]:
        dotted = self.arguments[0]
        cls = import_object(dotted)
        rows = []
        own = (
            {
                name
                for klass in cls.__mro__
                if klass.__module__.startswith("jumpstarter_jupyter.drivers")
                for name in vars(klass)
            }
            if "inherited" in self.options
            else set(vars(cls))
        )
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or name not in own or name in ("cli", "release", "widget", "client"):
                continue
            if not (inspect.isfunction(member) or isinstance(inspect.getattr_static(cls, name), property)):
                continue
            doc = inspect.getdoc(member) or ""
            owner = next(k for k in cls.__mro__ if name in vars(k))
            reference = addnodes.pending_xref(
                "",
                refdomain="py",
                reftype="meth" if inspect.isfunction(member) else "attr",
                reftarget=f"{owner.__module__}.{owner.__qualname__}.{name}",
                refexplicit=True,
            )
            reference += nodes.literal(text=name + ("()" if inspect.isfunction(member) else ""))
            rows.append([reference, inline(doc.split("\n\n")[0].replace("\n", " "))])
        return [table(["method", "what it does"], rows, [25, 75])]


def setup(app: Sphinx) -> dict:
    app.add_directive("bench-table", BenchTable)
    app.add_directive("soak-table", SoakTable)
    app.add_directive("config-keys", ConfigKeys)
    app.add_directive("client-methods", ClientMethods)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
