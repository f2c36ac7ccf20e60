"""Durations as people write them: ``90``, ``90s``, ``30m``, ``8h``, ``1h30m``."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str | float | int) -> float:
    """Seconds in ``value``: a number of seconds, or text like ``45s``, ``30m``, ``1h30m``.

    >>> parse_duration("1h30m"), parse_duration(90), parse_duration("2.5m")
    (5400.0, 90.0, 150.0)
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        text = str(value).strip().lower().replace(" ", "")
        parts = _PART.findall(text)
        if not text or "".join(number + unit for number, unit in parts) != text:
            raise ValueError(f"expected a duration such as 90, 45s, 30m or 1h30m, got {value!r}")
        seconds = sum(float(number) * _SECONDS[unit] for number, unit in parts)
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """``3725`` -> ``1h 2min``; ``95`` -> ``1 min 35 s``; for messages."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if minutes < 10 and secs else f"{minutes} min"
    return f"{secs} s"
