"""Does this grpcio's asyncio server cancel calls that nobody cancelled? (grpc alone, none of our code)

    python scripts/grpc_aio_cancels_unrelated_calls.py [--rounds N] [--server-python PY]

Three processes on loopback: a grpc.aio server with one unary method (``wait`` never answers,
anything else answers at once); a client abandoning 10 000 waits per round (half cancelled
after 20 ms, half by a 50 ms deadline, 200 at a time); a second client, on its own connection,
calling the same method with a 20 s deadline every 10 ms. The server counts the calls its
handler saw. grpcio 1.82.0 to 1.85.4 end a few of the second client's calls CANCELLED
("CANCELLED") without their handler ever running; 1.72.1 to 1.81.2 never did here. Exit
status 1 when any unrelated call failed. ``--server-python`` runs the server with another
environment's interpreter (another grpcio), the clients with this one.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time

import grpc

METHOD = "/repro.Repro/Call"
FLOOD = 10_000


def _same(data: bytes) -> bytes:
    return data


async def serve() -> None:
    seen = {"answered": 0}

    async def call(request: bytes, context) -> bytes:
        if request == b"wait":
            await asyncio.get_running_loop().create_future()
        seen["answered"] += 1
        return b"pong"

    handler = grpc.method_handlers_generic_handler(
        "repro.Repro", {"Call": grpc.unary_unary_rpc_method_handler(call, _same, _same)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    print(f"server on grpcio {grpc.__version__}: its handler answered {seen['answered']} calls", flush=True)
    await server.stop(None)


async def flood(port: int, rounds: int) -> None:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        limit = asyncio.Semaphore(200)

        async def abandon(index: int) -> None:
            async with limit:
                if index % 2:
                    with_deadline = call(b"wait", timeout=0.05)
                    try:
                        await with_deadline
                    except grpc.aio.AioRpcError:
                        pass
                else:
                    waiting = call(b"wait")
                    await asyncio.sleep(0.02)  # the call reaches the server before it is abandoned
                    waiting.cancel()

        for _ in range(rounds):
            await asyncio.gather(*(abandon(i) for i in range(FLOOD)))


async def unrelated(port: int, stop_file: str) -> None:
    outcomes: dict[str, int] = {}
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)
        while not os.path.exists(stop_file):
            try:
                await call(b"ping", timeout=20)
                outcome = "answered"
            except grpc.aio.AioRpcError as error:
                outcome = f"{error.code().name} ({error.details()})"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            await asyncio.sleep(0.01)
    print(f"unrelated calls: {outcomes}", flush=True)
    sys.exit(0 if set(outcomes) == {"answered"} else 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-python", default=sys.executable)
    parser.add_argument("--role", choices=["serve", "flood", "unrelated"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--stop-file", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.role == "serve":
        asyncio.run(serve())
        return 0
    if options.role == "flood":
        asyncio.run(flood(options.port, options.rounds))
        return 0
    if options.role == "unrelated":
        asyncio.run(unrelated(options.port, options.stop_file))
        return 0
    me = os.path.abspath(__file__)
    server = subprocess.Popen(
        [options.server_python, me, "--role", "serve"], stdout=subprocess.PIPE, text=True
    )
    try:
        port = server.stdout.readline().strip()
        stop_file = f"/tmp/grpc-repro-{os.getpid()}.stop"
        other = subprocess.Popen(
            [sys.executable, me, "--role", "unrelated", "--port", port, "--stop-file", stop_file]
        )
        started = time.monotonic()
        subprocess.run(
            [sys.executable, me, "--role", "flood", "--port", port, "--rounds", str(options.rounds)],
            check=True,
        )
        print(f"{options.rounds} x {FLOOD} abandoned calls in {time.monotonic() - started:.1f} s", flush=True)
        open(stop_file, "w").close()
        failed = other.wait(60)
        os.unlink(stop_file)
    finally:
        server.send_signal(signal.SIGTERM)
        print(server.communicate(timeout=30)[0].strip())
    return failed


if __name__ == "__main__":
    sys.exit(main())
