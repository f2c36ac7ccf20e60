"""``jumpstarter-jupyter j ... can dump|send|log|state``, with can-utils habits.

``dump`` prints frames as candump does, ``send`` takes cansend's ``123#DEADBEEF`` (8 hex
digits: an extended ID; ``123#R`` a remote frame; ``123##1DEADBEEF`` CAN FD with flags), and
``log FILE`` writes with python-can's own writers (``.log`` is candump's format, ``.asc``...).
"""

from __future__ import annotations

import re

import can
import click

FRAME = re.compile(
    r"^(?P<id>[0-9A-Fa-f]{3}|[0-9A-Fa-f]{8})#(?:(?P<rtr>R(?P<len>[0-9]?))|"
    r"#(?P<fd>[0-9A-Fa-f])(?P<fddata>[0-9A-Fa-f.]*)|(?P<data>[0-9A-Fa-f.]*))$"
)
FD_BRS, FD_ESI = 0x1, 0x2  # cansend's CAN FD flag nibble


def parse_frame(text: str) -> can.Message:
    """A frame in cansend's syntax: ``123#DEADBEEF``, ``12345678#00``, ``123#R``, ``123##1AA``."""
    match = FRAME.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a frame: expected ID#DATA (3 or 8 hex digits, then hex bytes), "
            "ID#R for a remote frame, or ID##F DATA for CAN FD"
        )
    ident, extended = int(match["id"], 16), len(match["id"]) == 8
    if not extended and ident > 0x7FF:
        raise ValueError(f"{text!r}: a standard ID is at most 7FF; write 8 hex digits for an extended one")
    if match["rtr"] is not None:
        return can.Message(
            arbitration_id=ident, is_extended_id=extended, is_remote_frame=True, dlc=int(match["len"] or 0)
        )
    fd = match["fd"] is not None
    hexdata = (match["fddata"] if fd else match["data"]).replace(".", "")
    if len(hexdata) % 2:
        raise ValueError(f"{text!r}: data must be whole bytes (an even number of hex digits)")
    data = bytes.fromhex(hexdata)
    if len(data) > (64 if fd else 8):
        raise ValueError(
            f"{text!r}: {len(data)} data bytes; a {'CAN FD' if fd else 'classic CAN'} frame holds "
            f"at most {64 if fd else 8}"
        )
    flags = int(match["fd"], 16) if fd else 0
    return can.Message(
        arbitration_id=ident,
        is_extended_id=extended,
        data=data,
        is_fd=fd,
        bitrate_switch=bool(flags & FD_BRS),
        error_state_indicator=bool(flags & FD_ESI),
    )


def parse_filter(text: str) -> dict:
    """A candump filter ``ID:MASK`` (hex) as a python-can filter."""
    ident, sep, mask = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return {"can_id": int(ident, 16), "can_mask": int(mask, 16), "extended": len(ident) == 8}
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected ID:MASK in hex, e.g. 123:7FF") from None


def candump_line(msg: can.Message) -> str:
    """One frame as candump prints it (transmitted frames marked TX)."""
    ident = f"{msg.arbitration_id:08X}" if msg.is_extended_id else f"{msg.arbitration_id:03X}"
    if msg.is_remote_frame:
        body = f"[{msg.dlc}]  remote request"
    elif msg.is_fd:
        body = f"[{len(msg.data):02d}]  " + " ".join(f"{b:02X}" for b in msg.data)
    else:
        body = f"[{msg.dlc}]  " + " ".join(f"{b:02X}" for b in msg.data)
    return f"  {msg.channel or ''}  {ident:>8}   {body}" + ("" if msg.is_rx else "   TX")


def commands(bus) -> list[click.Command]:
    @click.command(help="Print frames as they arrive (candump); Ctrl-C stops.")
    @click.option(
        "--filter", "filters", multiple=True, metavar="ID:MASK", help="Pass only matching IDs (hex)."
    )
    @click.option("-n", "--count", type=int, help="Stop after this many frames.")
    def dump(filters, count):
        bus.on_gap = lambda n: click.echo(f"# {n} frames missed: this reader fell behind")
        bus.set_filters([parse_filter(f) for f in filters] or None)
        for number, msg in enumerate(bus, 1):
            click.echo(candump_line(msg))
            if count is not None and number >= count:
                break

    @click.command(help="Send one frame (cansend): 123#DEADBEEF, 12345678#00, 123#R, 123##1DEADBEEF.")
    @click.argument("frame")
    def send(frame):
        try:
            msg = parse_frame(frame)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="FRAME") from None
        bus.send(msg)

    @click.command(
        help="Write frames to FILE with python-can's writer for its suffix (.log candump, .asc, .blf, .csv)."
    )
    @click.argument("path", type=click.Path(dir_okay=False, writable=True))
    @click.option("-n", "--count", type=int, help="Stop after this many frames.")
    def log(path, count):
        try:
            writer = can.Logger(path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="FILE") from None
        try:
            for number, msg in enumerate(bus, 1):
                writer(msg)
                if count is not None and number >= count:
                    break
        finally:
            writer.stop()

    @click.command(help="Print the bus state, protocol and channel.")
    def state():
        click.echo(f"state: {bus.state.name}\nprotocol: {bus.protocol.name}\nchannel: {bus.channel_info}")

    return [dump, send, log, state]
