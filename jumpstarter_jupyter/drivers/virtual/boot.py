"""The virtual board's boot sequence: bootloader, kernel, init, then the shell.

Each step prints its log with short pauses (simulated time, scaled by the board's pace) and
sets the current the board draws, so power readings follow the boot.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from jumpstarter_jupyter.drivers.virtual.image import BadImage, ImageInfo, read_image
from jumpstarter_jupyter.drivers.virtual.shell import KERNEL_RELEASE, Shell, read_line

if TYPE_CHECKING:
    from jumpstarter_jupyter.drivers.virtual.board import Board, Session

UBOOT = "U-Boot 2024.01 (Jan 08 2024 - 12:00:00 +0000)"
NO_IMAGE = "no bootable image"


class State(enum.Enum):
    """Where the board is."""

    OFF = "off"
    BOOTLOADER = "bootloader"
    KERNEL = "kernel"
    INIT = "init"
    IDLE = "idle"  # login prompt or shell
    NO_IMAGE = "no image"  # stopped in the bootloader
    HALTED = "halted"  # after `poweroff`: the relay is still on


# amperes drawn in each state; the kernel's draw rises towards KERNEL_PEAK as drivers probe
CURRENT = {
    State.OFF: 0.0,
    State.BOOTLOADER: 0.30,
    State.KERNEL: 0.45,
    State.INIT: 0.70,
    State.IDLE: 0.25,
    State.NO_IMAGE: 0.28,
    State.HALTED: 0.05,
}
KERNEL_PEAK = 0.90


def run(board: Board, session: Session) -> None:
    """Boot, run the shell, and boot again after ``reboot`` until power-off or ``poweroff``."""
    while True:
        image = bootloader(board, session)
        if image is None:
            board.enter(State.NO_IMAGE)
            bootloader_prompt(board, session)
            return
        kernel(board, session, image)
        init(board, session, image)
        action = Shell(board, session).run()
        board.http.stop()
        board.led.set(0)
        if action == "poweroff":
            board.enter(State.HALTED)
            return


def bootloader(board: Board, session: Session) -> ImageInfo | None:
    """Print the bootloader banner and load the image; None when there is nothing to boot."""
    board.enter(State.BOOTLOADER)
    board.image = None
    board.write(f"\nU-Boot SPL 2024.01\nTrying to boot from MMC1\n\n{UBOOT} jumpstarter virtual board\n\n")
    for line in (
        "DRAM:  512 MiB",
        "MMC:   mmc@fe320000: 0",
        "Loading Environment from MMC... OK",
        "In:    serial",
        "Out:   serial",
        "Err:   serial",
    ):
        board.write(line + "\n")
        session.pause(0.03)
    board.write("Hit any key to stop autoboot:  0 \n")
    session.pause(0.2)
    board.write("switch to partitions #0, OK\nmmc0 is current device\nScanning mmc 0:1...\n")
    try:
        image = _load(board.boot_medium())
    except BadImage as exc:
        board.write(f"** {NO_IMAGE} found on mmc0: {exc} **\n")
        return None
    board.write(f'Found image "{image.name} {image.version}" ({image.size} bytes)\nStarting kernel ...\n\n')
    board.image = image
    return image


def _load(path: str | None) -> ImageInfo:
    if path is None:
        raise BadImage("no card (the storage mux is not connected to the board)")
    try:
        with open(path, "rb") as card:
            return read_image(card)
    except FileNotFoundError:
        raise BadImage("the card is empty") from None


def bootloader_prompt(board: Board, session: Session) -> None:
    """Stay at the bootloader prompt: it reprints on Enter and knows no commands."""
    while True:
        board.write("=> ")
        command = read_line(board, session)
        if command:
            board.write(f"Unknown command '{command.split()[0]}' - try 'help'\n")


def kernel(board: Board, session: Session, image: ImageInfo) -> None:
    """The kernel's log; its current rises as drivers probe."""
    board.enter(State.KERNEL)
    lines = [
        (0.000000, "Booting Linux on physical CPU 0x0000000000 [0x410fd034]"),
        (0.000000, f"Linux version {KERNEL_RELEASE} (builder@jumpstarter) (gcc 12.2.0) #1 SMP PREEMPT"),
        (0.000000, "Machine model: Jumpstarter Virtual Board"),
        (0.000000, "Memory: 498712K/524288K available"),
        (0.112233, "smp: Brought up 1 node, 4 CPUs"),
        (0.520114, "Serial: 8250/16550 driver, 4 ports, IRQ sharing enabled"),
        (0.530871, "fe215040.serial: ttyS0 at MMIO 0xfe215040 (irq = 36) is a 16550"),
        (0.901245, "mmc0: new high speed SDHC card at address aaaa"),
        (0.910377, f"mmcblk0: mmc0:aaaa JSIMG {image.size // 1024} KiB"),
        (1.201930, "EXT4-fs (mmcblk0p2): mounted filesystem with ordered data mode"),
        (1.253004, "leds-gpio: status LED registered"),
        (1.300412, "Run /sbin/init as init process"),
    ]
    board.kernel_log = []
    for step, (stamp, text) in enumerate(lines):
        line = f"[{stamp:12.6f}] {text}"
        board.kernel_log.append(line)
        board.write(line + "\n")
        board.set_load(
            CURRENT[State.KERNEL] + (KERNEL_PEAK - CURRENT[State.KERNEL]) * step / (len(lines) - 1)
        )
        session.pause(0.07)


def init(board: Board, session: Session, image: ImageInfo) -> None:
    """Init's services; the HTTP service starts with them."""
    board.enter(State.INIT)
    board.write(f"\nWelcome to {image.name} {image.version}!\n\n")
    for service in ("Journal Service", "udev Kernel Device Manager", "Network Service", "LED Daemon"):
        session.pause(0.08)
        board.write(f"[  OK  ] Started {service}.\n")
    board.http.start()
    board.write("[  OK  ] Started HTTP Status Service.\n[  OK  ] Reached target Multi-User System.\n")
    session.pause(0.05)
    board.enter(State.IDLE)
