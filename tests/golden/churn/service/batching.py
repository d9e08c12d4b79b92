"""Adaptive micro-batching of the churn service's batch functions (tagged `serve batch`).

Each request of a batch route waits in its route's queue, one future per request. A dispatcher
hands the function what is waiting, up to NBOPS_MAX_BATCH_SIZE items in one call, in a worker
thread of its own, one call at a time. A request that finds the function idle is run at once;
requests that arrive while a call runs wait for it to end and go together in the next call.
Under load (the oldest waiting request came while the last call ran) the dispatcher also waits
a little for more to join: a quarter of a call's observed cost, never past NBOPS_MAX_LATENCY_MS
since the oldest came, and not once the batch is full.

A function reports a failed item by returning an Exception in its slot, which fails that
request alone; when a call of several items raises (or returns a list of the wrong length),
each item is run again alone, so that a bad input cannot fail its neighbours.

Generated from churn.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from .observability import Metrics

# Under load, the dispatcher waits for more requests this share of a call's observed cost.
GATHER_SHARE = 0.25
# How fast the observed cost of a call follows the latest calls (an exponential average).
COST_WEIGHT = 0.2


@dataclass
class Waiting:
    """A request's item in the queue, the future its route awaits, and when it came."""

    item: Any
    future: asyncio.Future[Any]
    came: float


class Batcher:
    """One batch function's queue, its dispatcher task and its worker thread."""

    def __init__(
        self,
        function: Callable[..., Any],
        route: str,
        *,
        max_batch_size: int,
        max_latency_ms: float,
        metrics: Metrics,
    ) -> None:
        self.function = function
        self.route = route
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency_ms / 1000
        self.metrics = metrics
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"batch-{route}")
        self.cost = 0.0  # seconds one call takes, on average, lately
        self.last_done = 0.0  # when the last call ended
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: deque[Waiting] = deque()
        self.arrived = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def submit(self, item: Any) -> Any:
        """The function's result for this one item, computed in a batch with others."""
        loop = asyncio.get_running_loop()
        if loop is not self.loop:  # a new event loop (a test client's): start afresh on it
            self.loop, self.queue, self.arrived = loop, deque(), asyncio.Event()
            self.task = loop.create_task(self._dispatch())
        waiting = Waiting(item, loop.create_future(), time.perf_counter())
        self.queue.append(waiting)
        self.arrived.set()
        return await waiting.future

    async def run_all(self, items: Sequence[Any]) -> list[Any]:
        """Each item's result, or the Exception it failed with, from one call of the list."""
        return await self._outcomes(list(items))

    def close(self) -> None:
        """Stop the dispatcher; a call still running is left to finish on its own."""
        if self.task is not None:
            self.task.cancel()
        for waiting in self.queue:
            waiting.future.cancel()
        self.worker.shutdown(wait=False, cancel_futures=True)

    async def _dispatch(self) -> None:
        while True:
            await self.arrived.wait()
            self.arrived.clear()
            while self.queue:
                await self._gather()
                batch = self._take()
                if batch:
                    await self._run(batch)

    async def _gather(self) -> None:
        """Under load, wait a little for more requests to join the next call."""
        oldest = self.queue[0].came
        if oldest > self.last_done or self.max_latency <= 0:
            return  # the function was idle when the oldest came: no one else is coming
        deadline = min(oldest + self.max_latency, time.perf_counter() + GATHER_SHARE * self.cost)
        while len(self.queue) < self.max_batch_size:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:  # TimeoutError itself from Python 3.11
                return

    def _take(self) -> list[Waiting]:
        """The oldest waiting requests whose clients still wait, up to the batch size."""
        batch: list[Waiting] = []
        while self.queue and len(batch) < self.max_batch_size:
            waiting = self.queue.popleft()
            if not waiting.future.done():  # a cancelled request is not run
                batch.append(waiting)
        return batch

    async def _run(self, batch: list[Waiting]) -> None:
        started = time.perf_counter()
        self.metrics.batch_size.labels(route=f"/{self.route}").observe(len(batch))
        for waiting in batch:
            self.metrics.queue_wait.labels(route=f"/{self.route}").observe(started - waiting.came)
        try:
            outcomes: list[Any] = await self._outcomes([waiting.item for waiting in batch])
        except asyncio.CancelledError:  # the service is stopping
            for waiting in batch:
                waiting.future.cancel()
            raise
        except Exception as error:  # not the function's: fail these requests, serve the next
            outcomes = [error] * len(batch)
        self.last_done = time.perf_counter()
        for waiting, outcome in zip(batch, outcomes, strict=True):
            if waiting.future.done():
                continue
            if isinstance(outcome, BaseException):
                waiting.future.set_exception(outcome)
            else:
                waiting.future.set_result(outcome)

    async def _outcomes(self, items: list[Any]) -> list[Any]:
        """Each item's result or Exception: one call of them all, else each alone."""
        started = time.perf_counter()
        try:
            results = await self._call(items)
        except Exception as error:
            if len(items) == 1:
                return [error]
            return [(await self._outcomes([item]))[0] for item in items]
        seconds = time.perf_counter() - started
        self.cost = seconds if not self.cost else self.cost + COST_WEIGHT * (seconds - self.cost)
        return results

    async def _call(self, items: list[Any]) -> list[Any]:
        """One call of the function with the list, in the worker thread, its answer checked."""
        if inspect.iscoroutinefunction(self.function):
            results = await self.function(items)
        else:
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(self.worker, self.function, items)
        if _is_array(results) or isinstance(results, tuple):
            results = list(results)
        if not isinstance(results, list) or len(results) != len(items):
            given = f"{len(results)} results" if isinstance(results, list) else "no list"
            raise ValueError(
                f"the batch function of /{self.route} returned {given} for {len(items)} "
                "inputs; it must return a list with one result per input"
            )
        return results


def _is_array(value: Any) -> bool:
    """A NumPy array (or the like): a sequence of results, one per row."""
    return type(value).__module__ == "numpy" and hasattr(value, "tolist") and value.ndim > 0


def batcher(
    batchers: dict[str, Batcher],
    route: str,
    function: Callable[..., Any],
    *,
    max_batch_size: int,
    max_latency_ms: float,
    metrics: Metrics,
) -> Batcher:
    """The route's batcher, made on its first request."""
    found = batchers.get(route)
    if found is None or found.function is not function:
        found = batchers[route] = Batcher(
            function,
            route,
            max_batch_size=max_batch_size,
            max_latency_ms=max_latency_ms,
            metrics=metrics,
        )
    return found
