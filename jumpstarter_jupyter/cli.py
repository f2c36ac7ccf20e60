"""The ``jumpstarter-jupyter`` command: ``run``, ``demo``, ``j`` and ``lease``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

import click

from jumpstarter_jupyter.drivers import registry
from jumpstarter_jupyter.errors import JumpstarterError


class _WithDriverCommands(click.Group):
    """Our commands plus those the drivers register (``drivers.COMMANDS`` and the
    ``jumpstarter_jupyter.commands`` entry points), each imported only when it runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *registry.command_names()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return super().get_command(ctx, name) or registry.load_command(name)


@click.group(cls=_WithDriverCommands)
@click.version_option(package_name="jumpstarter-jupyter")
def main() -> None:
    """Hardware-in-the-loop control: serve drivers (run, demo) and drive them (j)."""


def _serve_options(func):
    options = [
        click.option("--listen", metavar="HOST:PORT", help="Serve on TCP (port 0: any free port)."),
        click.option("--socket", "socket_path", metavar="PATH", help="Serve on a unix socket."),
        click.option(
            "--passphrase", envvar="JMP_GRPC_PASSPHRASE", help="Require this passphrase on every call."
        ),
        click.option(
            "--passphrase-file",
            type=click.Path(exists=True, dir_okay=False),
            help="Read the passphrase from this file (it never shows in ps).",
        ),
        click.option(
            "--tls-cert",
            type=click.Path(exists=True, dir_okay=False),
            help="Serve TLS with this certificate.",
        ),
        click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Key of --tls-cert."),
        click.option(
            "--bulk-port",
            type=click.IntRange(0, 65535),
            default=0,
            help="TCP port beside --listen where our clients send uploads (flashes) outside gRPC "
            "(default 0: any free port; with --socket, SOCKET.bulk).",
        ),
        click.option(
            "--no-bulk",
            is_flag=True,
            help="No bulk listener: uploads travel over gRPC only.",
        ),
        click.option(
            "--lease",
            "lease_mode",
            type=click.Choice(["required", "optional"]),
            help="required: controlling the board needs its lease (default: the config's lease: section).",
        ),
        click.option(
            "--admin-passphrase-file",
            type=click.Path(exists=True, dir_okay=False),
            help="The admin credential that may force-release a lease.",
        ),
        click.option(
            "--hub-api-url",
            metavar="URL",
            help="Holders are JupyterHub users this hub vouches for (e.g. http://127.0.0.1:8081/hub/api).",
        ),
        click.option(
            "--label",
            "labels",
            metavar="KEY=VALUE",
            multiple=True,
            callback=_labels,
            help="A label of this exporter (repeatable; over the config's labels:), for selectors.",
        ),
        click.option(
            "--stop-on-stdin-eof",
            is_flag=True,
            help="Stop when standard input closes: the exporter ends with the process that started it.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _block_stop_signals() -> None:
    """Block SIGINT/SIGTERM before any thread starts, so every thread inherits the mask and
    the main thread alone receives them in ``sigwait`` (a handler may never run while the
    main thread sleeps on a lock if the kernel delivers the signal to a driver's thread)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def _stop_on_stdin_eof() -> None:
    """Signal ourselves when stdin reaches EOF (the parent holding the pipe exited, even if killed)."""

    def watch():
        while sys.stdin.buffer.read1(4096):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


def _secret(value: str | None, path: str | None, name: str) -> str | None:
    """``--NAME`` or ``--NAME-file`` (read, white space dropped), not both."""
    from jumpstarter_jupyter.yamlfile import read_secret

    if path is None:
        return value
    if value:
        raise click.UsageError(f"give --{name} or --{name}-file, not both")
    try:
        return read_secret(path)
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"--{name}-file: {exc}") from None


def _labels(ctx, param, values: tuple[str, ...]) -> dict[str, str]:
    """``--label soc=imx8mp`` (repeatable) as a mapping; a bad one is a usage error."""
    from jumpstarter_jupyter.selector import check_label

    labels = {}
    for item in values:
        key, equals, value = item.partition("=")
        why = check_label(key.strip(), value.strip()) if equals else f"expected KEY=VALUE, got {item!r}"
        if why:
            raise click.BadParameter(why, ctx=ctx, param=param)
        labels[key.strip()] = value.strip()
    return labels


def _hub_api_url(value: str) -> str:
    from jumpstarter_jupyter.exporter.identity import hub_api_url

    try:
        return hub_api_url(value)
    except ValueError as exc:
        raise click.UsageError(f"--hub-api-url: {exc}") from None


def _log_to_stderr() -> None:
    """The exporter's own messages (leases, hooks and their output, warnings) on stderr;
    drivers' records stay in ``LogStream``, where clients read them."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("jumpstarter_jupyter")
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)


def _serve_until_signalled(
    root,
    listen,
    socket_path,
    passphrase,
    passphrase_file,
    tls_cert,
    tls_key,
    lease_mode,
    admin_passphrase_file,
    bulk_port=0,
    no_bulk=False,
    hub_api_url=None,
    stop_on_stdin_eof=False,
    labels=None,
    config=None,
) -> None:
    from dataclasses import replace

    from jumpstarter_jupyter.exporter import serve
    from jumpstarter_jupyter.exporter.leases import LeasePolicy

    controller = config.controller if config is not None else None
    if listen is None and socket_path is None and controller is None:
        listen = "127.0.0.1:7777"
    try:
        if listen is not None and socket_path is not None:
            raise click.UsageError("give --listen or --socket, not both")
        passphrase = _secret(passphrase, passphrase_file, "passphrase")
        policy = config.lease if config is not None else LeasePolicy()
        if lease_mode is not None:
            policy = replace(policy, required=lease_mode == "required")
        if admin_passphrase_file is not None:
            policy = replace(
                policy, admin_passphrase=_secret(None, admin_passphrase_file, "admin-passphrase")
            )
        if hub_api_url is not None:
            policy = replace(policy, hub_api_url=_hub_api_url(hub_api_url))
    except click.UsageError:
        root.teardown()
        raise
    exit_code = []

    def exit_requested(code: int) -> None:  # a hook's onFailure: exit
        exit_code.append(code)
        os.kill(os.getpid(), signal.SIGTERM)

    _log_to_stderr()
    try:
        exporter = serve(
            root,
            listen=listen,
            socket=socket_path,
            passphrase=passphrase,
            tls_cert=tls_cert,
            tls_key=tls_key,
            lease=policy,
            hooks=config.hooks if config is not None else None,
            on_exit=exit_requested,
            labels={**(config.labels if config is not None else {}), **(labels or {})},
            controller=controller,
            bulk_port=None if no_bulk else bulk_port,
        )
    except (OSError, ValueError) as exc:
        root.teardown()
        raise click.ClickException(str(exc)) from None
    if stop_on_stdin_eof:
        _stop_on_stdin_eof()
    where = [exporter.address] if exporter.address else []
    if controller is not None:
        where.append(f"leases of the controller at {controller.endpoint}")
    click.echo(f"serving {' and '.join(where)}")
    sys.stdout.flush()
    signal.sigwait(STOP_SIGNALS)
    code = exit_code[0] if exit_code else 0
    if exporter.stop():
        # a custom driver method ignored its cancellation: its worker thread would keep the
        # interpreter from exiting, and a stopped exporter must exit (teardown has run)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(code)
    sys.exit(code)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@_serve_options
def run(config, **options):
    """Serve the drivers of an ExporterConfig YAML file."""
    from jumpstarter_jupyter.exporter import build_tree, load_config

    _block_stop_signals()
    try:
        loaded = load_config(config)
        root = build_tree(loaded)
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    _serve_until_signalled(root, config=loaded, **options)


@main.command()
@_serve_options
def demo(**options):
    """Serve the virtual board: power, serial console, storage, network, button, led, CAN bus."""
    board = registry.resolve("VirtualBoard", click.ClickException)

    _block_stop_signals()
    _serve_until_signalled(board.create(), **options)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []}
)
@click.option(
    "--endpoint",
    envvar="JUMPSTARTER_HOST",
    help="HOST:PORT, unix:/path, a socket path or a pool board's name.",
)
@click.option("--passphrase", envvar="JMP_GRPC_PASSPHRASE", help="The exporter's passphrase.")
@click.option("--tls-ca", metavar="PEM", help="Connect with TLS, trusting this CA certificate.")
@click.option(
    "--controller",
    metavar="NAME",
    help="Lease an exporter matching --selector from the upstream controller of client config NAME.",
)
@click.option("--selector", metavar="S", help="With --controller: which exporters (board=rpi4,site=lab).")
@click.option("--duration", metavar="D", help="With --controller: how long to ask for (default 30m).")
@click.pass_context
def j(ctx, endpoint, passphrase, tls_ca, controller, selector, duration):
    """Drive an exporter's tree: j [--endpoint E | --controller NAME --selector S] <child ...> <command> [args]."""
    from jumpstarter_jupyter.client import connect, pool

    args = ctx.args
    if not endpoint and not controller:
        if not args or args[0] in ("--help", "-h"):
            click.echo(ctx.get_help())
            ctx.exit(0)
        raise click.UsageError("no exporter: pass --endpoint HOST:PORT or set $JUMPSTARTER_HOST")
    try:
        if controller is not None or selector is not None or duration is not None:
            root = _connect_controller(ctx, endpoint, controller, selector, duration)
        elif (entry := pool.lookup(endpoint)) is not None and entry.controller is not None:
            root = _connect_controller(ctx, None, entry.controller, entry.selector, None)
        else:
            # a lease for this one command when the exporter requires one (no lease hooks run);
            # a board someone holds is an error naming them, not a wait in line
            root = connect(
                endpoint,
                passphrase=passphrase,
                tls_ca=tls_ca,
                hooks=False,
                wait=0,
                purpose=f"j {' '.join(args)}"[:200],
            )
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        group = root.cli()
        group.add_command(_tree_command(root))
        group.main(args, prog_name="jumpstarter-jupyter j", standalone_mode=False)
    except click.exceptions.Exit as exc:
        ctx.exit(exc.exit_code)
    except click.ClickException:
        raise
    except click.exceptions.Abort:
        raise
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        root.close()
        if root.connection.controller_lease is not None:
            click.echo(f"released the controller lease {root.connection.controller_lease.id}", err=True)


def _connect_controller(ctx, endpoint, controller, selector, duration):
    """``j --controller NAME --selector S``: a controller lease for this one command, its wait on stderr."""
    from jumpstarter_jupyter.client import connect
    from jumpstarter_jupyter.durations import parse_duration

    if (
        endpoint
        and controller
        and ctx.get_parameter_source("endpoint") != click.core.ParameterSource.ENVIRONMENT
    ):
        raise click.UsageError("give --endpoint or --controller, not both")
    if controller is None or selector is None:
        raise click.UsageError("--controller NAME and --selector S go together (--duration with them)")
    try:
        seconds = parse_duration(duration) if duration is not None else 0
        root = connect(
            controller=controller,
            selector=selector,
            duration=seconds,
            on_wait=lambda reason: click.echo(
                f"waiting for an exporter matching {selector} at controller {controller}: {reason}", err=True
            ),
        )
    except ValueError as exc:  # a bad selector or duration
        raise click.UsageError(str(exc)) from None
    lease = root.connection.controller_lease
    click.echo(f"leased {lease.exporter} from {lease.where} (lease {lease.id})", err=True)
    return root


@main.command("run-notebooks")
@click.argument("notebooks", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--selector", required=True, help="The pool's boards to run on: a label selector (soc=imx8mp,site!=lab2)."
)
@click.option(
    "--each",
    is_flag=True,
    help="Run every notebook on every matching board (else each once, on any free one).",
)
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True, help="Runs at a time.")
@click.option(
    "-p",
    "--parameter",
    "parameters",
    nargs=2,
    multiple=True,
    metavar="KEY VALUE",
    help="A papermill parameter for every run (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder for the executed notebooks, junit.xml and index.html.",
)
@click.option("--wait", help="How long a run waits for a board (90s, 30m; default: as long as it takes).")
@click.option("-k", "--kernel", help="Kernel to run the notebooks with (default: each notebook's own).")
def run_notebooks(notebooks, selector, each, parallel, parameters, out, wait, kernel):
    """Run notebooks with papermill on the boards a selector matches, each run under its own lease.

    Each notebook gets the parameters `endpoint` and `lease_token` (pass them to jj.connect);
    writes the executed notebooks, junit.xml and index.html to --out. Exit code 1 when a run
    failed, 130 when interrupted (Ctrl-C releases every lease).
    """
    from pathlib import Path

    from jumpstarter_jupyter.durations import parse_duration
    from jumpstarter_jupyter.selector import SelectorError, parse

    try:
        parse(selector)
        waited = None if wait is None else parse_duration(wait)
    except (SelectorError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        from jumpstarter_jupyter.runs.runner import Plan
        from jumpstarter_jupyter.runs.runner import run_notebooks as run_all
    except ImportError as exc:
        raise click.ClickException(
            f"run-notebooks needs the farm extra: pip install 'jumpstarter-jupyter[farm]' ({exc})"
        ) from None
    plan = Plan(
        [Path(nb).resolve() for nb in notebooks],
        selector,
        Path(out).resolve(),
        each=each,
        parallel=parallel,
        parameters=list(parameters),
        kernel=kernel,
        wait=waited,
    )
    try:
        code = run_all(plan)
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    sys.exit(code)


_ENDPOINT = click.option(
    "--endpoint",
    envvar="JUMPSTARTER_HOST",
    required=True,
    help="HOST:PORT, unix:/path, a socket path or a pool board's name ($JUMPSTARTER_HOST).",
)
_PASSPHRASE = click.option("--passphrase", envvar="JMP_GRPC_PASSPHRASE", help="The exporter's passphrase.")
_TLS_CA = click.option("--tls-ca", metavar="PEM", help="Connect with TLS, trusting this CA certificate.")


@main.group()
def lease() -> None:
    """Who holds a board: acquire, status, release, force-release."""


def _controller_entry(endpoint: str):
    """The pool entry ``endpoint`` names when that entry is leased from a controller, else None."""
    from jumpstarter_jupyter.client import pool

    try:
        entry = pool.lookup(endpoint)
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    return entry if entry is not None and entry.controller is not None else None


def _client_config(entry):
    from jumpstarter_jupyter.client.controller import load_client_config

    try:
        return load_client_config(entry.controller)
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None


def _hold_controller_lease(entry, seconds: float, waited: float | None, print_name: bool) -> None:
    """``lease acquire`` on a pool board a controller leases: hold a controller lease until stopped."""
    from jumpstarter_jupyter.client.controller import ControllerLease
    from jumpstarter_jupyter.durations import format_duration

    lease = ControllerLease(_client_config(entry), entry.selector, seconds)
    try:
        lease.acquire(
            waited,
            on_wait=lambda reason: click.echo(
                f"waiting for an exporter matching {entry.selector} at {lease.where}: {reason}", err=True
            ),
        )
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    left = format_duration(max(0.0, lease.state.end - time.time()))
    click.echo(
        f"controller lease {lease.id} of {lease.exporter} held by client {lease.state.holder} for {left}; "
        "Ctrl-C releases it",
        err=True,
    )
    if print_name:
        click.echo(lease.id)
    sys.stdout.flush()
    _stop_on_stdin_eof()
    signal.sigwait(STOP_SIGNALS)
    lease.release()
    click.echo(f"released the controller lease {lease.id}", err=True)


def _controller_status(entry) -> None:
    """``lease status`` on a pool board a controller leases: this Client object's leases there."""
    from jumpstarter_jupyter.client.controller import client_leases, where
    from jumpstarter_jupyter.durations import format_duration

    config = _client_config(entry)
    try:
        leases = client_leases(config)
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    name = f"{config.settings.namespace}/{config.settings.name}"
    click.echo(f"{entry.name}: any exporter matching {entry.selector} at {where(config)}")
    if not leases:
        click.echo(f"client {name} holds no lease there")
    for lease in leases:
        if lease.state == "ready":
            about = f"{lease.exporter}, {format_duration(max(0.0, lease.end - time.time()))} left"
        else:
            about = f"{lease.state}: {lease.reason}" + (f" ({lease.message})" if lease.message else "")
        click.echo(f"  {lease.name}  {lease.selector}  {about}")


def _lease_connection(endpoint: str, passphrase: str | None, tls_ca: str | None):
    """A connection to an exporter with a lease service, and the board's lease (a ``BoardLease``)."""
    from jumpstarter_jupyter.client import pool
    from jumpstarter_jupyter.client.connection import Connection

    try:
        connection = Connection(*pool.resolve(endpoint, passphrase or None), tls_ca)
        board = connection.read_board_lease()
        if not board.supported:
            connection.close()
            raise click.ClickException(
                f"the exporter at {endpoint} has no lease service (an upstream exporter?)"
            )
        return connection, board
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None


@lease.command()
@_ENDPOINT
@_PASSPHRASE
@_TLS_CA
@click.option("--purpose", default="", help="What for, shown to others.")
@click.option("--duration", default="0", help="How long (90s, 30m, 2h; default: the exporter's).")
@click.option("--wait", help="Give up after waiting this long in line (default: wait).")
@click.option(
    "--print-token", is_flag=True, help="Print the lease's token (for upstream clients: --passphrase TOKEN)."
)
def acquire(endpoint, passphrase, tls_ca, purpose, duration, wait, print_token):
    """Take the board's lease and hold it until Ctrl-C (or SIGTERM, or standard input closing);
    on a pool board a controller leases, a lease from that controller (--print-token: its name)."""
    from jumpstarter_jupyter.durations import format_duration, parse_duration

    try:
        seconds, waited = parse_duration(duration), None if wait is None else parse_duration(wait)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _block_stop_signals()
    entry = _controller_entry(endpoint)
    if entry is not None:
        _hold_controller_lease(entry, seconds, waited, print_token)
        return
    connection, _ = _lease_connection(endpoint, passphrase, tls_ca)
    try:
        held = connection.acquire(
            purpose=purpose,
            duration=seconds,
            wait=waited,
            on_queued=lambda n: click.echo(f"waiting: number {n} in line", err=True),
        )
    except JumpstarterError as exc:
        connection.close()
        raise click.ClickException(str(exc)) from None
    click.echo(
        f"lease held by {held.holder} for {format_duration(held.remaining)}; Ctrl-C releases it", err=True
    )
    if print_token:
        click.echo(held.token)
    sys.stdout.flush()
    _stop_on_stdin_eof()
    signal.sigwait(STOP_SIGNALS)
    connection.close()
    click.echo(f"released ({held.ended})", err=True)


@lease.command()
@_ENDPOINT
@_PASSPHRASE
@_TLS_CA
def status(endpoint, passphrase, tls_ca):
    """Who holds the board, until when, and who waits (a controller's board: your leases there)."""
    from jumpstarter_jupyter.client.lease import describe
    from jumpstarter_jupyter.durations import format_duration

    entry = _controller_entry(endpoint)
    if entry is not None:
        _controller_status(entry)
        return
    connection, board = _lease_connection(endpoint, passphrase, tls_ca)
    connection.close()
    click.echo(f"leases {'required' if board.required else 'optional'} on {endpoint}")
    click.echo(describe(board) if board.holder else "free")
    now = time.time()
    for position, waiter in enumerate(board.waiting, 1):
        purpose = f" ({waiter.purpose})" if waiter.purpose else ""
        click.echo(
            f"  {position}. {waiter.holder}{purpose}, waiting for {format_duration(now - waiter.since)}"
        )


@lease.command()
@_ENDPOINT
@_PASSPHRASE
@_TLS_CA
@click.option(
    "--token", envvar="JMP_LEASE_TOKEN", required=True, help="The lease's token ($JMP_LEASE_TOKEN)."
)
def release(endpoint, passphrase, tls_ca, token):
    """Give a lease back by its token (the exporter's afterLease hook runs); a controller's
    board: end your lease there by its name (from `lease status`)."""
    from jumpstarter_jupyter.client.controller import delete_lease
    from jumpstarter_jupyter.client.lease import release as release_lease

    entry = _controller_entry(endpoint)
    if entry is not None:
        try:
            delete_lease(_client_config(entry), token)
        except JumpstarterError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"released the controller lease {token}")
        return
    _lease_call(
        endpoint,
        passphrase,
        tls_ca,
        lambda connection: release_lease(
            connection.channel, connection.credentials, connection.endpoint, token
        ),
    )


@lease.command("force-release")
@_ENDPOINT
@_PASSPHRASE
@_TLS_CA
@click.option(
    "--admin-passphrase-file",
    type=click.Path(exists=True, dir_okay=False),
    required=True,
    help="File holding the exporter's admin credential.",
)
def force_release(endpoint, passphrase, tls_ca, admin_passphrase_file):
    """End whoever's lease, with the exporter's admin credential."""
    from jumpstarter_jupyter.client.lease import force_release as force_release_lease

    entry = _controller_entry(endpoint)
    if entry is not None:
        raise click.ClickException(
            f"pool board {entry.name!r} is leased from controller {entry.controller}: only its admin "
            "ends other clients' leases there (kubectl delete lease NAME); your own: lease release --token NAME"
        )
    admin = _secret(None, admin_passphrase_file, "admin-passphrase")
    _lease_call(
        endpoint,
        passphrase,
        tls_ca,
        lambda connection: force_release_lease(
            connection.channel, connection.credentials, connection.endpoint, admin
        ),
    )


def _lease_call(endpoint, passphrase, tls_ca, call) -> None:
    """Print the exporter's answer to ``call(connection)``."""
    connection, _ = _lease_connection(endpoint, passphrase, tls_ca)
    try:
        click.echo(call(connection))
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        connection.close()


def _tree_command(root) -> click.Command:
    @click.command("tree")
    def tree():
        """Print the driver tree with each driver's client class."""
        for client in root.walk():
            depth = client.path.count(".") + (1 if client.path else 0)
            click.echo(
                f"{'  ' * depth}{client.name}  ({type(client).__name__})"
                + (f"  {client.description}" if client.description else "")
            )

    return tree


if __name__ == "__main__":
    main()
