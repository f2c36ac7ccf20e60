"""The ``jumpstarter-jupyter`` command: ``run``, ``demo`` and ``j``."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading

import click

from jumpstarter_jupyter.errors import JumpstarterError


@click.group()
@click.version_option(package_name="jumpstarter-jupyter")
def main() -> None:
    """Hardware-in-the-loop control: serve drivers (run, demo) and drive them (j)."""


def _serve_options(func):
    func = click.option("--listen", metavar="HOST:PORT", help="Serve on TCP (port 0: any free port).")(func)
    func = click.option("--socket", "socket_path", metavar="PATH", help="Serve on a unix socket.")(func)
    func = click.option("--passphrase", envvar="JMP_GRPC_PASSPHRASE", help="Require this passphrase on every call.")(func)
    func = click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False),
                        help="Read the passphrase from this file (it never shows in ps).")(func)
    func = click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="Serve TLS with this certificate.")(func)
    func = click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Key of --tls-cert.")(func)
    func = click.option("--stop-on-stdin-eof", is_flag=True,
                        help="Stop when standard input closes: the exporter ends with the process that started it.")(func)
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


def _passphrase(passphrase: str | None, passphrase_file: str | None) -> str | None:
    if passphrase_file is None:
        return passphrase
    if passphrase:
        raise click.UsageError("give --passphrase or --passphrase-file, not both")
    with open(passphrase_file, encoding="utf-8") as file:
        text = file.read().strip()  # a trailing newline from an editor or echo is not part of it
    if not text:
        raise click.UsageError(f"--passphrase-file {passphrase_file} is empty")
    return text


def _serve_until_signalled(root, listen, socket_path, passphrase, tls_cert, tls_key,
                           stop_on_stdin_eof=False) -> None:
    from jumpstarter_jupyter.exporter import serve

    if listen is None and socket_path is None:
        listen = "127.0.0.1:7777"
    if listen is not None and socket_path is not None:
        root.teardown()
        raise click.UsageError("give --listen or --socket, not both")
    try:
        exporter = serve(root, listen=listen, socket=socket_path, passphrase=passphrase,
                         tls_cert=tls_cert, tls_key=tls_key)
    except (OSError, ValueError) as exc:
        root.teardown()
        raise click.ClickException(str(exc)) from None
    if stop_on_stdin_eof:
        _stop_on_stdin_eof()
    click.echo(f"serving {exporter.address}")
    sys.stdout.flush()
    signal.sigwait(STOP_SIGNALS)
    if exporter.stop():
        # a custom driver method ignored its cancellation: its worker thread would keep the
        # interpreter from exiting, and a stopped exporter must exit (teardown has run)
        logging.shutdown()
        sys.stdout.flush()
        os._exit(0)


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@_serve_options
def run(config, listen, socket_path, passphrase, passphrase_file, tls_cert, tls_key, stop_on_stdin_eof):
    """Serve the drivers of an ExporterConfig YAML file."""
    from jumpstarter_jupyter.exporter import build_tree, load_config

    passphrase = _passphrase(passphrase, passphrase_file)
    _block_stop_signals()
    try:
        root = build_tree(load_config(config))
    except JumpstarterError as exc:
        raise click.ClickException(str(exc)) from None
    _serve_until_signalled(root, listen, socket_path, passphrase, tls_cert, tls_key, stop_on_stdin_eof)


@main.command()
@_serve_options
def demo(listen, socket_path, passphrase, passphrase_file, tls_cert, tls_key, stop_on_stdin_eof):
    """Serve the virtual board: power, serial console, storage, network, button, led."""
    from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard

    passphrase = _passphrase(passphrase, passphrase_file)
    _block_stop_signals()
    _serve_until_signalled(VirtualBoard.create(), listen, socket_path, passphrase, tls_cert, tls_key,
                           stop_on_stdin_eof)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "help_option_names": []})
@click.option("--endpoint", envvar="JUMPSTARTER_HOST", help="HOST:PORT, unix:/path or a socket path.")
@click.option("--passphrase", envvar="JMP_GRPC_PASSPHRASE", help="The exporter's passphrase.")
@click.option("--tls-ca", metavar="PEM", help="Connect with TLS, trusting this CA certificate.")
@click.pass_context
def j(ctx, endpoint, passphrase, tls_ca):
    """Drive an exporter's tree: j [--endpoint E] <child ...> <command> [args]."""
    from jumpstarter_jupyter.client import connect

    args = ctx.args
    if not endpoint:
        if not args or args[0] in ("--help", "-h"):
            click.echo(ctx.get_help())
            ctx.exit(0)
        raise click.UsageError("no exporter: pass --endpoint HOST:PORT or set $JUMPSTARTER_HOST")
    try:
        root = connect(endpoint, passphrase=passphrase, tls_ca=tls_ca)
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


def _tree_command(root) -> click.Command:
    @click.command("tree")
    def tree():
        """Print the driver tree with each driver's client class."""
        for client in root.walk():
            depth = client.path.count(".") + (1 if client.path else 0)
            click.echo(f"{'  ' * depth}{client.name}  ({type(client).__name__})"
                       + (f"  {client.description}" if client.description else ""))

    return tree


if __name__ == "__main__":
    main()
