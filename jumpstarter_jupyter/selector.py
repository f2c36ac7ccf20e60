"""Label selectors in Kubernetes' syntax: which boards of the pool a request means.

>>> selector = parse("soc=imx8mp, site!=lab2, rev in (b, c), !broken")
>>> selector.matches({"soc": "imx8mp", "site": "lab1", "rev": "b"})
True
>>> selector.matches({"soc": "imx8mp", "rev": "a"})
False
>>> str(selector)
'soc=imx8mp,site!=lab2,rev in (b,c),!broken'

Requirements are separated by commas and all must hold: ``key=value`` (also ``==``),
``key!=value``, ``key in (v1,v2)``, ``key notin (v1,v2)``, ``key`` (the label exists) and
``!key`` (it does not). As in Kubernetes, ``!=`` and ``notin`` also match boards without the
label, and the empty selector matches every board. Keys and values follow Kubernetes' label
rules (an optional ``dns.prefix/`` before the name; at most 63 characters of letters, digits,
``-``, ``_`` and ``.``, starting and ending with a letter or digit; a value may be empty).

No maintained pure-Python package parses this syntax (the Kubernetes client leaves it to the
API server), hence this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
PREFIX = r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*"
KEY = re.compile(rf"(?:{PREFIX}/)?{NAME}")
VALUE = re.compile(rf"(?:{NAME})?")
# one token: an operator, a parenthesis, a comma, or a run of key/value characters
TOKEN = re.compile(r"\s*(==|!=|=|!|\(|\)|,|[^\s=!(),]+)")
SET_OPERATORS = ("in", "notin")


class SelectorError(ValueError):
    """A selector that does not parse; the message shows where."""

    def __init__(self, text: str, position: int, expected: str):
        self.text, self.position = text, position
        found = f"{text[position : position + 12]!r}" if position < len(text) else "the end"
        super().__init__(
            f"bad label selector {text!r} at column {position + 1}: expected {expected}, found {found}"
        )


@dataclass(frozen=True)
class Requirement:
    """One clause: ``key`` compared by ``operator`` (``=``, ``!=``, ``in``, ``notin``, ``exists``,
    ``!``) with ``values``."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when ``labels`` satisfy this clause."""
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in SET_OPERATORS:
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold (none: every board matches)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when ``labels`` satisfy every requirement."""
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(map(str, self.requirements))


def parse(text: str) -> Selector:
    """Parse a selector; :class:`SelectorError` names the column and what was expected there."""
    tokens = _Tokens(text)
    requirements = []
    if tokens.peek() is None:
        return Selector()
    while True:
        requirements.append(_requirement(tokens))
        if tokens.peek() is None:
            return Selector(tuple(requirements))
        tokens.expect({","}, "',' between requirements")


def _requirement(tokens: _Tokens) -> Requirement:
    if tokens.peek() == "!":
        tokens.take()
        return Requirement(tokens.word(KEY, "a label key after '!'"), "!")
    key = tokens.word(KEY, "a label key")
    operator = tokens.peek()
    if operator in (None, ","):
        return Requirement(key, "exists")
    if operator in ("=", "==", "!="):
        tokens.take()
        value = "" if tokens.peek() in (None, ",") else tokens.word(VALUE, "a label value")
        return Requirement(key, "!=" if operator == "!=" else "=", (value,))
    tokens.expect(set(SET_OPERATORS), "=, ==, !=, in, notin, ',' or the end")
    values = _values(tokens)
    return Requirement(key, operator, values)


def _values(tokens: _Tokens) -> tuple[str, ...]:
    """``(v1, v2)``: the values of ``in``/``notin`` (at least one; an empty one is allowed)."""
    tokens.expect({"("}, "'(' starting the list of values")
    values = []
    while True:
        values.append("" if tokens.peek() in (",", ")") else tokens.word(VALUE, "a label value"))
        if tokens.expect({",", ")"}, "',' or ')' in the list of values") == ")":
            return tuple(dict.fromkeys(values))


class _Tokens:
    """The selector's tokens, with the column of each for error messages."""

    def __init__(self, text: str):
        self.text = text
        self.items: list[tuple[str, int]] = []
        position = 0
        while text[position:].strip():
            match = TOKEN.match(text, position)
            self.items.append((match.group(1), match.start(1)))
            position = match.end()
        self.index = 0

    def peek(self) -> str | None:
        return self.items[self.index][0] if self.index < len(self.items) else None

    def _position(self) -> int:
        return self.items[self.index][1] if self.index < len(self.items) else len(self.text)

    def take(self) -> str:
        token = self.items[self.index][0]
        self.index += 1
        return token

    def expect(self, allowed: set[str], what: str) -> str:
        if self.peek() not in allowed:
            raise SelectorError(self.text, self._position(), what)
        return self.take()

    def word(self, pattern: re.Pattern, what: str) -> str:
        token = self.peek()
        if token is None or token in ("=", "==", "!=", "!", "(", ")", ",") or not pattern.fullmatch(token):
            raise SelectorError(self.text, self._position(), what)
        return self.take()


def check_label(key: str, value: str) -> str:
    """Why ``key: value`` cannot be a label a selector can name ("" when it can)."""
    if not KEY.fullmatch(key):
        return f"label key {key!r} is not a valid name (letters, digits, -_. ; an optional dns.prefix/)"
    if not VALUE.fullmatch(value):
        return f"label value {value!r} of {key!r} is not valid (at most 63 letters, digits, -_. )"
    return ""
