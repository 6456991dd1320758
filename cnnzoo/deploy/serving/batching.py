"""Dynamic batching: the inputs of concurrent requests gathered into one model call.

A request's inputs wait in a queue; the batcher takes the oldest and adds whatever else is queued, up to
`max_batch` inputs. While fewer are gathered it waits up to `max_wait` seconds for more, but only while
other requests are being decoded (`incoming`: their bodies have arrived), so a lone request is never held
back for one that does not exist. Requests that arrive during a model call queue up and form the next batch, so under
load the batches fill by themselves. A request larger than `max_batch` is cut into pieces. The model runs
on one thread of its own; the event loop only gathers and hands out results.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np


class ServerStopping(Exception):
    """The answer of a request still waiting when the server stops (after its graceful time ran out)."""


@dataclass
class _Job:
    inputs: np.ndarray
    answer: asyncio.Future


class Batcher:
    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], max_batch: int, max_wait: float,
                 on_batch: Callable[[int, float], None] = lambda size, seconds: None):
        self.predict_batch, self.max_batch, self.max_wait, self.on_batch = predict, max_batch, max_wait, on_batch
        self.incoming = 0  # requests being decoded, which may join the next batch
        self._jobs: collections.deque[_Job] = collections.deque()
        self._batch: list[_Job] = []  # the jobs taken from the queue for the next model call, or in it
        self._arrived: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="cnnzoo-model")

    async def run_in_model_thread(self, function: Callable, *args):
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, function, *args)

    async def start(self) -> None:
        self._arrived = asyncio.Event()
        self._task = asyncio.create_task(self._gather_and_run(), name="cnnzoo-batcher")

    async def stop(self) -> None:
        """After the server has answered its requests: nothing is left waiting, the model thread ends."""
        left = [*self._batch, *self._jobs]  # any only when the graceful shutdown ran out of time
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for job in left:
            if not job.answer.done():
                job.answer.set_exception(ServerStopping("the server stopped before this request was predicted"))
        self._model_thread.shutdown(wait=False, cancel_futures=True)

    @contextlib.contextmanager
    def reading(self):
        """Around decoding one request's inputs: the batcher may wait for them."""
        self.incoming += 1
        try:
            yield
        finally:
            self.incoming -= 1

    async def predict(self, inputs: np.ndarray) -> np.ndarray:
        """The outputs of `inputs`' rows, predicted among other requests' inputs."""
        loop = asyncio.get_running_loop()
        answers = []
        for start in range(0, len(inputs), self.max_batch):
            job = _Job(inputs[start:start + self.max_batch], loop.create_future())
            self._jobs.append(job)
            answers.append(job.answer)
        self._arrived.set()
        return await answers[0] if len(answers) == 1 else np.concatenate(await asyncio.gather(*answers))

    async def _gather_and_run(self) -> None:
        while True:
            while not self._jobs:
                self._arrived.clear()
                await self._arrived.wait()
            self._batch = []
            await self._gather(self._batch)
            await self._run(self._batch)

    async def _gather(self, jobs: list[_Job]) -> None:
        loop = asyncio.get_running_loop()
        jobs.append(self._jobs.popleft())
        size, deadline = len(jobs[0].inputs), loop.time() + self.max_wait
        while size < self.max_batch:
            if not self._jobs:
                left = deadline - loop.time()
                if self.incoming == 0 or left <= 0:
                    break
                self._arrived.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._arrived.wait(), left)
                continue
            if size + len(self._jobs[0].inputs) > self.max_batch:
                break  # it opens the next batch
            jobs.append(self._jobs.popleft())
            size += len(jobs[-1].inputs)

    async def _run(self, jobs: list[_Job]) -> None:
        inputs = np.concatenate([job.inputs for job in jobs])
        started = time.perf_counter()
        try:
            outputs = await self.run_in_model_thread(self.predict_batch, inputs)
        except Exception as exc:  # noqa: BLE001 - each waiting request answers with it (a 500, logged)
            for job in jobs:
                if not job.answer.done():
                    job.answer.set_exception(exc)
            return
        self.on_batch(len(inputs), time.perf_counter() - started)
        offset = 0
        for job in jobs:
            if not job.answer.done():  # a request whose client went away is not answered
                job.answer.set_result(outputs[offset:offset + len(job.inputs)])
            offset += len(job.inputs)
