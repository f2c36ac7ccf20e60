"""The virtual board's login prompt and shell.

Log in as ``root`` (no password). Commands: ``help``, ``uname [-a|-r|-n]``, ``led on|off``,
``button``, ``cat /etc/os-release``, ``uptime``, ``dmesg``, ``echo``, ``hostname``, ``whoami``,
``ip addr``, ``exit``, ``reboot``, ``poweroff``. Enter on an empty line reprints the prompt,
so a reader that attached late can always provoke a fresh ``login:`` or ``#``.
"""

from __future__ import annotations

import shlex
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jumpstarter_jupyter.drivers.virtual.board import Board, Session

USER = "root"
KERNEL_RELEASE = "6.6.32-jumpstarter"
ENTER = (0x0D, 0x0A)
ERASE = (0x08, 0x7F)
CTRL_C = 0x03
CTRL_D = 0x04


def read_line(board: Board, session: Session, echo: bool = True) -> str | None:
    """One line typed on the console with echo and backspace; None for Ctrl-C.

    CR, LF and CR LF each end a line once, whatever the terminal sends.
    """
    chars: list[str] = []
    while True:
        key = session.key()
        if key in ENTER:
            if key == 0x0A and session.last_key == 0x0D and not chars:
                session.last_key = key
                continue  # the LF of a CR LF pair already ended the previous line
            session.last_key = key
            board.write("\n")
            return "".join(chars)
        session.last_key = key
        if key in ERASE:
            if chars:
                chars.pop()
                if echo:
                    board.write("\b \b")
        elif key == CTRL_C:
            board.write("^C\n")
            return None
        elif key == CTRL_D and not chars:
            board.write("\n")
            return "exit"
        elif 0x20 <= key < 0x7F:
            chars.append(chr(key))
            if echo:
                board.write(chr(key))


class Shell:
    """The login prompt, then commands until ``reboot`` or ``poweroff``."""

    def __init__(self, board: Board, session: Session):
        self.board, self.session = board, session

    @property
    def prompt(self) -> str:
        return f"{USER}@{self.board.hostname}:~# "

    def run(self) -> str:
        """Returns ``"reboot"`` or ``"poweroff"``."""
        image = self.board.image
        self.board.write(f"\n{image.name} {image.version} {self.board.hostname} ttyS0\n\n")
        self.session.flush_keys()
        while True:
            self.login()
            action = self.commands()
            if action in ("reboot", "poweroff"):
                return action

    def login(self) -> None:
        while True:
            self.board.write(f"{self.board.hostname} login: ")
            user = read_line(self.board, self.session)
            if not user:
                continue  # Enter (or Ctrl-C) reprints the prompt
            if user == USER:
                self.board.write(
                    f"Last login: on ttyS0\n\n{self.board.image.name} {self.board.image.version}\n"
                    "Type 'help' for the commands this board knows.\n"
                )
                return
            self.board.write("Password: ")
            read_line(self.board, self.session, echo=False)
            self.session.pause(0.3)
            self.board.write("\nLogin incorrect\n")

    def commands(self) -> str:
        """Run commands until one of ``exit``, ``reboot``, ``poweroff``; returns it."""
        while True:
            self.board.write(self.prompt)
            line = read_line(self.board, self.session)
            if not line or not line.strip():
                continue
            try:
                argv = shlex.split(line)
            except ValueError as exc:
                self.board.write(f"-sh: syntax error: {exc}\n")
                continue
            if argv[0] in ("exit", "logout"):
                return "exit"
            if argv[0] in ("reboot", "poweroff"):
                self.shutdown(argv[0])
                return argv[0]
            handler = getattr(self, f"cmd_{argv[0].replace('-', '_')}", None)
            if handler is None:
                self.board.write(f"-sh: {argv[0]}: not found\n")
            else:
                self.board.write(handler(argv[1:]))

    def shutdown(self, action: str) -> None:
        board = self.board
        board.write("[  OK  ] Stopped HTTP Status Service.\n[  OK  ] Stopped LED Daemon.\n")
        board.http.stop()
        self.session.pause(0.1)
        board.write("[  OK  ] Reached target System Shutdown.\n")
        board.write("reboot: Restarting system\n" if action == "reboot" else "reboot: Power down\n")

    # commands: each returns its output
    def cmd_help(self, args: list[str]) -> str:
        names = sorted(name[4:] for name in dir(self) if name.startswith("cmd_"))
        return "Commands: " + " ".join(names + ["exit", "reboot", "poweroff"]) + "\n"

    def cmd_uname(self, args: list[str]) -> str:
        parts = {"-s": "Linux", "-n": self.board.hostname, "-r": KERNEL_RELEASE, "-m": "aarch64"}
        if "-a" in args:
            return f"Linux {self.board.hostname} {KERNEL_RELEASE} #1 SMP PREEMPT aarch64 GNU/Linux\n"
        return " ".join(parts.get(arg, "Linux") for arg in (args or ["-s"])) + "\n"

    def cmd_led(self, args: list[str]) -> str:
        if args == ["on"] or args == ["off"]:
            self.board.led.set(1 if args[0] == "on" else 0)
            return ""
        if not args:
            return f"led: {'on' if self.board.led.value else 'off'}\n"
        return "usage: led on|off\n"

    def cmd_button(self, args: list[str]) -> str:
        return f"button: {'pressed' if self.board.button.value else 'released'}\n"

    def cmd_cat(self, args: list[str]) -> str:
        image = self.board.image
        files = {
            "/etc/os-release": f'NAME="{image.name}"\nVERSION="{image.version}"\nID=jumpstarter\n'
            f'PRETTY_NAME="{image.name} {image.version}"\n',
            "/etc/hostname": f"{self.board.hostname}\n",
            "/proc/uptime": f"{self._uptime():.2f} {self._uptime() * 3.9:.2f}\n",
        }
        return "".join(files.get(name, f"cat: {name}: No such file or directory\n") for name in args)

    def cmd_uptime(self, args: list[str]) -> str:
        seconds = int(self._uptime())
        clock = time.strftime("%H:%M:%S")
        return (
            f" {clock} up {seconds // 60} min, {seconds % 60} s,  1 user,  load average: 0.08, 0.03, 0.01\n"
        )

    def cmd_dmesg(self, args: list[str]) -> str:
        return "".join(line + "\n" for line in self.board.kernel_log)

    def cmd_echo(self, args: list[str]) -> str:
        return " ".join(args) + "\n"

    def cmd_hostname(self, args: list[str]) -> str:
        return f"{self.board.hostname}\n"

    def cmd_whoami(self, args: list[str]) -> str:
        return f"{USER}\n"

    def cmd_ip(self, args: list[str]) -> str:
        return (
            f"1: lo: <LOOPBACK,UP> mtu 65536\n    inet 127.0.0.1/8 scope host lo\n"
            f"2: eth0: <BROADCAST,MULTICAST,UP> mtu 1500\n    inet 127.0.0.1 (HTTP status service on port "
            f"{self.board.http.port})\n"
        )

    def _uptime(self) -> float:
        return time.monotonic() - self.session.started
