"""The batcher of `cnnzoo serve` on its own event loop: what waits for what, how requests are cut and joined,
and what a failing model call does. The "model" is a numpy function that records each call's batch."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from cnnzoo.deploy.serving.batching import Batcher, ServerStopping


class Model:
    def __init__(self, fail_first: bool = False):
        self.calls: list[int] = []
        self.fail_first = fail_first

    def __call__(self, x: np.ndarray) -> np.ndarray:
        self.calls.append(len(x))
        if self.fail_first and len(self.calls) == 1:
            raise RuntimeError("model call failed")
        return x.sum(axis=1, keepdims=True) * 2


def rows(start: int, count: int) -> np.ndarray:
    return np.arange(start, start + count, dtype=np.float32)[:, None].repeat(3, axis=1)


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_lone_request_is_not_held_for_the_wait():
    async def go():
        batcher = Batcher(Model(), max_batch=32, max_wait=2.0)
        await batcher.start()
        started = time.perf_counter()
        out = await batcher.predict(rows(0, 2))
        await batcher.stop()
        return out, time.perf_counter() - started

    out, seconds = run(go())
    np.testing.assert_array_equal(out[:, 0], [0, 6])
    assert seconds < 1.0  # nothing else was being read, so the 2 s wait was skipped


def test_a_request_being_read_is_waited_for_and_joins_the_batch():
    model = Model()

    async def go():
        batcher = Batcher(model, max_batch=32, max_wait=2.0)
        await batcher.start()

        async def late():
            with batcher.reading():
                await asyncio.sleep(0.05)  # still decoding when the first request is queued
            return await batcher.predict(rows(10, 3))

        first, second = await asyncio.gather(batcher.predict(rows(0, 1)), late())
        await batcher.stop()
        return first, second

    first, second = run(go())
    assert model.calls == [4]
    np.testing.assert_array_equal(first[:, 0], [0])
    np.testing.assert_array_equal(second[:, 0], [60, 66, 72])


def test_large_requests_are_cut_and_the_next_one_opens_a_new_batch():
    model = Model()

    async def go():
        batcher = Batcher(model, max_batch=32, max_wait=0.0)
        await batcher.start()
        big, small = await asyncio.gather(batcher.predict(rows(0, 70)), batcher.predict(rows(100, 5)))
        await batcher.stop()
        return big, small

    big, small = run(go())
    assert model.calls == [32, 32, 6 + 5]  # what is queued joins without waiting, up to max_batch
    np.testing.assert_array_equal(big[:, 0], np.arange(70) * 6)
    np.testing.assert_array_equal(small[:, 0], np.arange(100, 105) * 6)


def test_a_failed_call_fails_its_requests_only():
    model = Model(fail_first=True)

    async def go():
        batcher = Batcher(model, max_batch=32, max_wait=0.0)
        await batcher.start()
        with pytest.raises(RuntimeError, match="model call failed"):
            await batcher.predict(rows(0, 1))
        out = await batcher.predict(rows(1, 1))
        await batcher.stop()
        return out

    np.testing.assert_array_equal(run(go())[:, 0], [6])


def test_a_stop_that_cannot_wait_answers_every_request_left():
    release = threading.Event()

    def stuck(x: np.ndarray) -> np.ndarray:
        release.wait(10)
        return x

    async def go():
        batcher = Batcher(stuck, max_batch=1, max_wait=0.0)
        await batcher.start()
        running = asyncio.ensure_future(batcher.predict(rows(0, 1)))
        queued = asyncio.ensure_future(batcher.predict(rows(1, 1)))
        await asyncio.sleep(0.2)  # the first is in the model call, the second waits in the queue
        await batcher.stop()
        release.set()
        return await asyncio.gather(running, queued, return_exceptions=True)

    answers = run(go())
    assert all(isinstance(answer, ServerStopping) for answer in answers)
