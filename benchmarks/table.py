"""The results as a plain-text table (also pasted into the README's Performance section)."""

from __future__ import annotations

SIDES = ("ours", "upstream", "raw")


def render(result: dict) -> str:
    """Medians per side, ours/upstream and ours/(faster) raw, and each target with met/missed."""
    header = ["figure", "unit", "ours", "upstream", "raw ceiling", "ours/upstream", "ours/raw", "targets"]
    lines = [header]
    for row in result["rows"]:
        sides, ratios = row["sides"], row["ratios"]
        raw = _number(sides.get("raw", {}).get("median"))
        for side in sides:  # other baselines: raw aio, raw socket, a full flash beside a bmap flash
            if side not in SIDES:
                raw += f" ({side.removeprefix('raw ')} {_number(sides[side]['median'])})"
        for side, ratio in ratios.items():
            if side.removeprefix("ours/") not in (*SIDES, "raw aio", "raw socket"):
                raw += f" [{side} {_ratio(ratio)}]"
        lines.append(
            [
                row["title"],
                row["unit"],
                _number(sides.get("ours", {}).get("median")),
                _number(sides.get("upstream", {}).get("median")),
                raw,
                _ratio(ratios.get("ours/upstream")),
                _ratio(_against_faster_raw(ratios)),
                "; ".join(f"{t['target']}: {_verdict(t['met'])}" for t in row["targets"]),
            ]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [
        " | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)).rstrip()
        for line in lines
    ]
    text.insert(1, "-|-".join("-" * width for width in widths))
    machine = result["machine"]
    text.append("")
    text.append(
        f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB, {machine['os']}, "
        f"Python {machine['python']}; {result['rounds']} round(s), medians"
        + (" -- QUICK MODE: harness check, not a measurement" if result["quick"] else "")
    )
    if result["errors"]:
        text.append(f"{len(result['errors'])} error(s):")
        text.extend(f"  {error}" for error in result["errors"])
    return "\n".join(text)


def _against_faster_raw(ratios: dict) -> float | None:
    """ours / the faster raw ceiling (the smaller ratio), where both servers were measured."""
    measured = [ratios[key] for key in ("ours/raw", "ours/raw aio") if key in ratios]
    return min(measured) if measured else None


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}".replace(",", " ") if value >= 100 else f"{value:.3g}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _verdict(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]
