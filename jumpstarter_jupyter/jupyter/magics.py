"""``%jmp``: connect a notebook to a board and look at it.

    %jmp connect [ENDPOINT | --selector S [--controller NAME]] [--passphrase P] [--name dut] [--watch]
                 [--wait D] [--purpose T] [--duration D]
    %jmp disconnect [NAME]
    %jmp tree [NAME]
    %jmp status
    %jmp lease [NAME] [--extend D]
    %jmp release [NAME]
    %jmp pool
    %jmp gdb [CHILD]
    %jmp --help

``connect`` follows the endpoint rule of ``jumpstarter_jupyter.connect``: the argument, else
``$JUMPSTARTER_HOST``, else a private virtual board that lives as long as the kernel. It takes
the board's lease when the exporter requires one (showing the place in line while it waits);
``--watch`` never does. ``--selector soc=imx8mp`` takes any board of the pool whose labels
match: a free one at once, else the first one released while waiting at all of them; with
``--controller NAME`` (an upstream client config, ``~/.config/jumpstarter/clients/NAME.yaml``)
that controller leases a matching exporter, reached through its router, showing the lease as a
widget (why it waits, then who holds which exporter and the time left); ``lease`` reads that
lease from the controller and ``release`` deletes it. The kernel
gives its leases back when it shuts down or restarts, and on ``%unload_ext``. ``gdb`` opens a
local port to a debugger (CHILD, e.g. ``dut.debugger``; default the board's first) for a local
gdb, kept until ``disconnect``, and prints gdb's command line.
"""

from __future__ import annotations

import ast
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class, output_can_be_silenced
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from IPython.display import display

from jumpstarter_jupyter.client import DriverClient, connect, connect_leased, pool
from jumpstarter_jupyter.client.controller import ControllerLease, load_client_config
from jumpstarter_jupyter.client.lease import describe
from jumpstarter_jupyter.durations import format_duration, parse_duration
from jumpstarter_jupyter.errors import JumpstarterError
from jumpstarter_jupyter.jupyter.lease import ControllerLeaseWidget
from jumpstarter_jupyter.jupyter.panel import close_widgets, tree_lines

COMMANDS = ("connect", "disconnect", "tree", "status", "lease", "release", "pool", "gdb")


@magics_class
class JumpstarterMagics(Magics):
    """The ``%jmp`` line magic and the connections it made (by variable name)."""

    def __init__(self, shell: Any):
        super().__init__(shell)
        self.connections: dict[str, DriverClient] = {}

    @magic_arguments()
    @argument("-h", "--help", action="store_true", help="Show this help.")
    @argument("command", nargs="?", choices=COMMANDS, help="What to do.")
    @argument(
        "target",
        nargs="?",
        help="connect: ENDPOINT (host:port, unix:/path, a socket path, a pool board); "
        "disconnect, tree, lease, release: the variable NAME; "
        "gdb: the debugger (dut.debugger; default the first).",
    )
    @argument("--passphrase", help="connect: the exporter's passphrase (default $JMP_GRPC_PASSPHRASE).")
    @argument("--name", default="dut", help="connect: the variable to bind the board to (default: dut).")
    @argument(
        "--selector",
        metavar="S",
        help="connect: any board of the pool whose labels match S "
        "(soc=imx8mp,site!=lab2): a free one, else the first released.",
    )
    @argument(
        "--controller",
        metavar="NAME",
        help="connect: lease the --selector's board from the upstream controller of client config NAME.",
    )
    @argument("--watch", action="store_true", help="connect: only watch; never take the board's lease.")
    @argument("--wait", metavar="D", help="connect: wait at most D (90s, 10m) in line for the lease.")
    @argument("--purpose", default="", help="connect: what the board is for, shown to others.")
    @argument(
        "--duration", metavar="D", help="connect: how long to hold the lease (default: the exporter's)."
    )
    @argument("--extend", metavar="D", help="lease: make the lease run D from now.")
    @output_can_be_silenced
    @line_magic
    def jmp(self, line: str = "") -> DriverClient | None:
        """Connect to a Jumpstarter exporter and show its drivers as widgets.

        A trailing ``;`` silences the output, as for any expression (``%jmp connect;``).
        """
        silenced = line.rstrip().endswith(";")
        args = parse_argstring(self.jmp, line.rstrip().removesuffix(";"))
        args.silenced = silenced
        if args.help or args.command is None:
            print(self.jmp.parser.format_help())
            return None
        try:
            return getattr(self, f"_{args.command}")(args)
        except JumpstarterError as exc:  # a clear one-line error, not a gRPC traceback
            raise UsageError(f"%jmp {args.command}: {exc}") from None

    # commands
    def _connect(self, args: Any) -> DriverClient:
        if not args.name.isidentifier():
            raise UsageError(f"%jmp connect: --name must be a Python identifier, got {args.name!r}")
        line = None  # the place in line, shown while waiting for the lease and updated in place
        target = "the board's lease" if args.selector is None else f"a board matching {args.selector}"
        best = "" if args.selector is None else " (the best place across them)"

        def queued(position: int) -> None:
            nonlocal line
            text = {"text/plain": f"waiting for {target}: number {position} in line{best}"}
            if line is None:
                line = display(text, raw=True, display_id=True)
            else:
                line.update(text, raw=True)

        if args.selector is not None:
            args.selector = _unquoted(args.selector)
        if args.selector is not None and (args.target or args.passphrase):
            raise UsageError("%jmp connect: give an ENDPOINT or --selector, not both")
        if args.controller is not None and (args.selector is None or args.watch):
            raise UsageError("%jmp connect: --controller needs a --selector (and leases: no --watch)")
        entry = pool.lookup(args.target) if args.target and not args.watch else None
        if entry is not None and entry.controller is not None:  # a pool board a controller leases
            args.controller, args.selector = entry.controller, entry.selector
        try:
            if args.controller is not None:
                client = self._connect_controller(args)
            else:
                client = connect(
                    args.target,
                    args.passphrase,
                    name=args.name,
                    lease=False if args.watch else None,
                    wait=_duration("--wait", args.wait),
                    purpose=args.purpose,
                    selector=args.selector,
                    duration=_duration("--duration", args.duration) or 0,
                    on_queued=queued,
                )
        except ValueError as exc:  # a bad selector: the column and what was expected
            raise UsageError(f"%jmp connect: {exc}") from None
        board = f": {client.connection.board}" if args.selector is not None else ""
        if line is not None:
            line.update({"text/plain": f"waited in line: the lease is yours{board}"}, raw=True)
        elif board:
            print(f"{args.name} is {client.connection.board} (matches {args.selector})")
        self._close(args.name)  # only now: a failed connect keeps the old connection
        self.connections[args.name] = client
        self.shell.push({args.name: client})
        if not args.silenced and not self._result_is_displayed():
            display(client)
        return client

    def _connect_controller(self, args: Any) -> DriverClient:
        """Lease from the controller, showing the lease as a widget from its first wait on."""
        lease = ControllerLease(
            load_client_config(args.controller), args.selector, _duration("--duration", args.duration) or 0
        )
        display(ControllerLeaseWidget(lease))
        lease.acquire(_duration("--wait", args.wait))
        return connect_leased(lease, args.name)

    def _disconnect(self, args: Any) -> None:
        name = args.target or self._only_name()
        if name not in self.connections:
            raise UsageError(f"%jmp disconnect: no connection named {name!r}; connected: {self._names()}")
        self._close(name)
        print(f"{name}: disconnected")

    def _tree(self, args: Any) -> None:
        root = self._client(args.target or self._only_name())
        print("\n".join(tree_lines(root)))

    def _status(self, _args: Any) -> None:
        if not self.connections:
            print("not connected; %jmp connect [ENDPOINT]")
        for name, client in self.connections.items():
            print(status_line(name, client))

    def _pool(self, _args: Any) -> None:
        states = list(pool.pool_states())
        # not probed: their controller knows which exporter is free
        leased = [e for e in pool.load_pool(controllers=True).values() if e.controller is not None]
        if not states and not leased:
            print(
                f"the pool is empty: name boards in {pool.POOL_FILE} (looked for "
                f"{', '.join(str(p) for p in pool.pool_files())})"
            )
        width = max((len(s.name) for s in states), default=0)
        for state in states:
            about = f"  {state.description}" if state.description else ""
            labels = ",".join(f"{key}={value}" for key, value in state.labels.items())
            labels = f"  [{labels}]" if labels else ""
            print(f"{state.name:<{width}}  {state.endpoint}: {pool.describe_state(state)}{labels}{about}")
        for entry in leased:
            about = f"  {entry.description}" if entry.description else ""
            print(
                f"{entry.name}  controller {entry.controller}: any exporter matching {entry.selector}{about}"
            )

    def _lease(self, args: Any) -> None:
        client = self._client(args.target or self._only_name())
        lease = client.connection.lease
        if client.connection.controller_lease is not None:
            if args.extend:
                raise UsageError(
                    f"%jmp lease: {client.name}'s lease is the controller's: its length is set when it is "
                    "taken (%jmp connect --controller ... --duration D)"
                )
            print(f"{client.name}: {controller_lease_text(client.connection.controller_lease)}")
            return
        if args.extend:
            if lease is None or not lease.active:
                raise UsageError(f"%jmp lease: {client.name} holds no lease to extend")
            lease.extend(_duration("--extend", args.extend))
        print(f"{client.name}: {lease_text(client)}")

    def _release(self, args: Any) -> None:
        client = self._client(args.target or self._only_name())
        controller_lease = client.connection.controller_lease
        if controller_lease is not None:
            controller_lease.release()
            print(
                f"{client.name}: the controller lease {controller_lease.id} of {controller_lease.exporter} is "
                f"released at {controller_lease.where}; the board is free (connect again for a new lease)"
            )
            return
        if client.connection.lease is None:
            print(f"{client.name}: holds no lease")
            return
        client.connection.release_lease()
        print(f"{client.name}: lease released; still connected, as a watcher")

    def _gdb(self, args: Any) -> None:
        name, _, path = (args.target or "").partition(".")
        if name not in self.connections:  # "debugger" alone: a child of the one connection
            name, path = self._only_name(), args.target or ""
        root = self._client(name)
        found = [root[path]] if path else [c for c in root.walk() if hasattr(c, "serve_gdb")]
        if not found or not hasattr(found[0], "serve_gdb"):
            raise UsageError(f"%jmp gdb: {root.name} has no debugger{f' at {path!r}' if path else ''}")
        print(
            f"{found[0].display_path}: {found[0].serve_gdb()}\n"
            "(open until %jmp disconnect; while gdb is attached, the notebook's debugger calls wait)"
        )

    # helpers
    def disconnect_all(self) -> None:
        """Close every connection (``%unload_ext``)."""
        for name in list(self.connections):
            self._close(name)

    def _close(self, name: str) -> None:
        client = self.connections.pop(name, None)
        if client is None:
            return
        if self.shell.user_ns.get(name) is client:
            del self.shell.user_ns[name]
        close_widgets(client)
        client.close()

    def _client(self, name: str) -> DriverClient:
        if name in self.connections:
            return self.connections[name]
        raise UsageError(f"no connection named {name!r}; connected: {self._names()}")

    def _only_name(self) -> str:
        """The one connection's name, else ``dut``."""
        return next(iter(self.connections)) if len(self.connections) == 1 else "dut"

    def _names(self) -> str:
        return ", ".join(self.connections) or "none (%jmp connect first)"

    def _result_is_displayed(self) -> bool:
        """True when IPython will display this magic's result: it ends the cell as a bare expression.

        ``%jmp connect`` alone shows the panel through its result; ``dut2 = %jmp connect`` shows
        it here. IPython decides the same way (``DisplayHook.quiet`` reads the current cell).
        """
        cells = self.shell.history_manager.input_hist_parsed
        source = cells[-1] if cells else ""
        try:
            body = ast.parse(source).body
        except SyntaxError:
            return False
        if source.rstrip().endswith(";") or not body or not isinstance(body[-1], ast.Expr):
            return False
        call = body[-1].value
        return (
            isinstance(call, ast.Call)
            and getattr(call.func, "attr", "") == "run_line_magic"
            and bool(call.args)
            and getattr(call.args[0], "value", None) == "jmp"
        )


def _unquoted(value: str) -> str:
    """``'soc in (a,b)'`` without its quotes: IPython splits magic arguments as shlex does on
    Windows (quotes stay), and a selector with spaces needs them."""
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _duration(option: str, value: str | None) -> float | None:
    try:
        return None if value is None else parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"%jmp: {option}: {exc}") from None


def status_line(name: str, client: DriverClient) -> str:
    """Where, how many drivers (and which failed), whether the exporter answers now, and the board's lease."""
    connection = client.connection
    where = "private virtual board" if client.private_board is not None else connection.endpoint
    try:
        connection.refresh()
        health = f"exporter {connection.report.uuid[:8]} reachable"
    except JumpstarterError as exc:
        return f"{name}: {where}, UNREACHABLE ({exc})"
    drivers = sum(1 for _ in client.walk()) - 1
    failed = [node.display_path for node in client.walk() if node.failed]
    failing = f" ({len(failed)} failed: {', '.join(failed)})" if failed else ""
    return f"{name}: {where}, {drivers} drivers{failing}, {health}; {lease_text(client)}"


def controller_lease_text(lease: ControllerLease) -> str:
    """``controller lease ID at controller lab (HOST:PORT): client alice holds exporter E, 29 min left``,
    from the controller now (ended: why, and how to get a new one)."""
    state = lease.refresh() or lease.state
    if state is None:
        return f"controller lease {lease.id} at {lease.where}: the controller does not answer"
    if state.state == "ended":
        return lease.end_notice() or f"the controller lease {lease.id} ended ({state.reason})"
    left = format_duration(max(0.0, state.end - time.time()))
    return f"controller lease {lease.id} at {lease.where}: client {state.holder} holds {state.exporter}, {left} left"


def lease_text(client: DriverClient) -> str:
    """``you hold the board (bring-up), 58 min left; 1 waiting: bob@lab``, from the exporter."""
    connection = client.connection
    if connection.controller_lease is not None:
        return controller_lease_text(connection.controller_lease)
    board = connection.read_board_lease()
    if not board.supported:
        return "the exporter has no leases (an upstream exporter)"
    if not board.holder:
        held = "free" + (": take it with %jmp connect" if board.required else " (leases are optional here)")
    elif connection.lease is not None and connection.lease.active:
        purpose = f" ({board.purpose})" if board.purpose else ""
        held = f"you hold the board{purpose}, {format_duration(connection.lease.remaining)} left"
    else:
        held = describe(board) + ("" if board.required else " (leases are optional here)")
    queue = f"; {len(board.queue)} waiting: {', '.join(board.queue)}" if board.queue else ""
    return f"{held}{queue}"
