"""Running exported methods for the servicers: coroutines on the loop, plain functions on workers.

Every call gets a :class:`~jumpstarter_jupyter.driver.cancel.CallToken`. When the RPC is
cancelled (the client went away, its deadline passed, the exporter stops), grpc cancels
the handler's task: an ``async`` method is cancelled with it; a plain method's token is
cancelled and the worker thread is released as soon as the method notices (every built-in
wait does at once). Waiting for a worker costs the loop nothing.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent import futures
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from jumpstarter_jupyter.driver.base import ExportedMethod
from jumpstarter_jupyter.driver.cancel import CallToken, use_token

log = logging.getLogger("jumpstarter_jupyter.exporter")

WORKERS = 64  # plain methods running at once; more wait in line (costing no thread)
_END = object()


class Calls:
    """The exporter's worker threads and the calls running on them."""

    def __init__(self, workers: int = WORKERS):
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="driver")
        self.running: dict[object, str] = {}  # plain calls on a worker now, for stop()
        self.futures: set[Future] = set()

    async def call(self, method: ExportedMethod, driver: Any, args: list, name: str) -> Any:
        """Run one unary (or stream-opening) method and return its result."""
        if method.is_async:
            return await method.func(driver, *args)
        return await self.run(method.func, driver, *args, name=name)

    async def run(self, func: Callable, *args: Any, name: str = "") -> Any:
        """Run a plain function on a worker with a fresh token, cancelled if this task is."""
        return await self._submit(CallToken(name or getattr(func, "__qualname__", repr(func))), func, args)

    async def _submit(self, token: CallToken, func: Callable, args: tuple) -> Any:
        future = self.pool.submit(self._tracked, token, func, args)
        self.futures.add(future)
        future.add_done_callback(self.futures.discard)
        try:
            return await asyncio.wrap_future(future)  # cancelling this cancels a call still in line
        except asyncio.CancelledError:
            token.cancel()
            raise

    def _tracked(self, token: CallToken, func: Callable, args: tuple) -> Any:
        key = object()
        self.running[key] = token.name
        try:
            return use_token(token).run(func, *args)
        finally:
            del self.running[key]

    async def items(self, method: ExportedMethod, driver: Any, args: list, name: str) -> AsyncIterator[Any]:
        """The values a streaming method yields, ending its generator when the consumer stops."""
        if method.is_async:
            generator = method.func(driver, *args)
            try:
                async for item in generator:
                    yield item
            finally:
                await generator.aclose()
            return
        token = CallToken(name)
        generator = method.func(driver, *args)  # runs nothing yet
        stepping = threading.Lock()  # a generator cannot close while a step of it runs

        def step() -> Any:
            with stepping:
                return next(generator, _END)

        def close() -> None:
            with stepping:
                generator.close()

        try:
            while (item := await self._submit(token, step, ())) is not _END:
                yield item
        finally:
            token.cancel()
            try:
                self.pool.submit(self._tracked, token, close, ())
            except RuntimeError:  # the exporter is stopping: teardown releases what it held
                pass

    def stop(self, timeout: float) -> list[str]:
        """Release the workers; returns the calls still running after ``timeout`` seconds."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        futures.wait(list(self.futures), timeout)
        return sorted(self.running.values())
