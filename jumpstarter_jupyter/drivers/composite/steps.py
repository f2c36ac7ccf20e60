"""Orchestration steps shared by boards built as composites (the virtual board, the QEMU board).

A board's ``flash`` and ``boot_to_shell`` read like a strategy: a short list of named steps that
call its children (``power``, ``serial``, ``storage``). A failure names the task, the step that
failed and what the console showed last.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import pexpect

from jumpstarter_jupyter.driver import Cancelled, Driver
from jumpstarter_jupyter.drivers.serial.common import ConsoleSpawn
from jumpstarter_jupyter.protocol.metadata import CONTENT_ENCODING_KEY

TAIL = 300  # bytes of console output quoted in a failure

Step = tuple[str, Callable[[], object]]


def step_failed(task: str, step: str, exc: Exception, console: str) -> Exception:
    """The error a failed step raises: the same family (timeout, value, runtime), with step and console tail."""
    kind = next((k for k in (TimeoutError, ValueError) if isinstance(exc, k)), RuntimeError)
    shown = f"; the console showed last: {console!r}" if console else ""
    return kind(f"{task}: step {step!r} failed: {exc}{shown}")


def run_steps(task: str, steps: Iterable[Step]) -> None:
    """Run ``(name, action)`` steps in order; the first failure raises :func:`step_failed`."""
    for step, action in steps:
        try:
            action()
        except Exception as exc:
            raise step_failed(task, step, exc, "") from None


def flash_steps(board: Driver, image: dict) -> list[Step]:
    """Write ``image`` (a resource, raw or compressed) to ``board``'s card and boot it.

    Storage to host, write, storage to DUT, power cycle: the steps of a board whose children
    include ``storage`` (a storage mux) and ``power``.
    """
    storage, power = board.children["storage"], board.children["power"]

    def write() -> None:
        with board.resource(image) as source:
            written = storage.write_from(source, image.get(CONTENT_ENCODING_KEY))
        board.logger.info("flashed %d bytes", written)

    def cycle() -> None:
        power.off()
        power.on()

    return [
        ("storage to host", storage.host),
        ("write image", write),
        ("storage to DUT", storage.dut),
        ("power cycle", cycle),
    ]


def reach_shell(
    serial: Driver, power_up: Callable[[], object], prompt_step: Callable[[str], str], timeout_message: str
) -> None:
    """``boot_to_shell``'s strategy: power up, then answer prompts until a shell's.

    ``prompt_step(step)`` reacts to the next prompt and returns the step now in progress
    (``"shell"``: done); it raises ``pexpect.TIMEOUT`` at the deadline. A failure names the
    step and what ``serial``'s console showed last; a cancelled caller's ``Cancelled`` passes.
    """
    step = "power on"
    try:
        power_up()
        step = "wait for the login prompt"
        while (step := prompt_step(step)) != "shell":
            pass
    except Cancelled:
        raise
    except pexpect.TIMEOUT:
        raise step_failed(
            "boot_to_shell", step, TimeoutError(timeout_message), console_tail(serial)
        ) from None
    except Exception as exc:
        raise step_failed("boot_to_shell", step, exc, console_tail(serial)) from None


@contextmanager
def watch_console(serial: Driver) -> Iterator[ConsoleSpawn]:
    """A pexpect spawn over ``serial``'s console from now on (started before any step acts); typing writes to it."""
    reader = serial.console.reader(from_end=True)
    spawn = ConsoleSpawn(serial.write)

    def feed() -> None:
        while not reader.done:
            chunk = reader.read()
            if chunk is not None:
                spawn.feed(chunk.data)

    thread = threading.Thread(target=feed, name="board console follower", daemon=True)
    thread.start()
    try:
        yield spawn
    finally:
        reader.close()
        thread.join(5)


def console_tail(serial: Driver, size: int = TAIL) -> str:
    """The last ``size`` bytes ``serial``'s console showed, as text (for error messages)."""
    return serial.console.tail(size).decode("utf-8", errors="replace")
