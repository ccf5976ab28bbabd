"""Run evaluations on daemon threads that a hung callback cannot keep alive."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class WorkerPool:
    """Daemon worker threads, so a hung callback never blocks interpreter exit.

    ThreadPoolExecutor joins its threads at exit, which a callback that never
    returns would turn into a hang; these threads are daemons instead, and a
    worker stuck past its timeout is replaced so the pool keeps its capacity.
    """

    def __init__(
        self,
        size: int,
        on_retire: Callable[[], Any] | None = None,
        *,
        on_idle: Callable[[], Any] | None = None,
        idle_seconds: Callable[[], float] | None = None,
    ) -> None:
        self._size = max(1, size)
        # Run by a replaced thread as it leaves, for example to close the
        # database connections it opened, which nothing else can reach.
        self._on_retire = on_retire
        # Run by a thread that found no task for idle_seconds(), for example
        # to give back its database connections while it waits.
        self._on_idle = on_idle
        self._idle_seconds = idle_seconds
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._stuck: set[Future] = set()

    def submit(self, fn: Callable[[], Any]) -> Future:
        """Queue `fn` and return its future."""
        future: Future = Future()
        self._tasks.put((future, fn))
        self._grow()
        return future

    def replace_stuck_worker(self, future: Future) -> None:
        """Add a thread for the one running `future` past its timeout."""
        with self._lock:
            if future.done():
                return
            self._stuck.add(future)
        self._grow()

    def broadcast(self, fn: Callable[[], Any], timeout: float = 5.0) -> None:
        """Run `fn` once on every idle worker thread."""
        with self._lock:
            count = sum(t.is_alive() for t in self._threads)
        barrier = threading.Barrier(count + 1) if count else None
        for _ in range(count):
            self.submit(lambda: _run_then_wait(fn, barrier, timeout))
        if barrier is not None:
            try:
                barrier.wait(timeout)
            except threading.BrokenBarrierError:
                pass

    def _grow(self) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            while len(self._threads) < self._size + len(self._stuck):
                thread = threading.Thread(
                    target=self._work, name="metricdemo-evaluation", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _next_task(self) -> tuple[Future, Callable[[], Any]]:
        """Return the next task; run on_idle once when none came for a while."""
        idle = self._idle_seconds() if self._idle_seconds else 0
        if self._on_idle is None or idle <= 0:
            return self._tasks.get()
        try:
            return self._tasks.get(timeout=idle)
        except queue.Empty:
            _call_quietly(self._on_idle)
            return self._tasks.get()

    def _work(self) -> None:
        while True:
            future, fn = self._next_task()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn())
            except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                future.set_exception(exc)
            with self._lock:
                retired = future in self._stuck
                if retired:
                    # This thread was replaced while stuck; leave now.
                    self._stuck.discard(future)
                    self._threads.remove(threading.current_thread())
            if retired:
                if self._on_retire is not None:
                    _call_quietly(self._on_retire)
                return


def _call_quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001, S110 - housekeeping must not stop the thread
        pass


def _run_then_wait(fn: Callable[[], Any], barrier: Any, timeout: float) -> None:
    try:
        fn()
    finally:
        # Hold this thread until every worker has taken one task, so each
        # worker runs `fn` exactly once.
        try:
            barrier.wait(timeout)
        except threading.BrokenBarrierError:
            pass


class PerProcess(Generic[T]):
    """Hold one object per process: made on first use, forgotten after fork().

    Threads do not survive fork(), so a forked child (a preloaded gunicorn
    worker) makes its own object, with its own threads, on first use.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make = make
        self._value: T | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def get(self) -> T:
        """Return this process's object, making it on first use."""
        value = self._value
        if value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._make()
                value = self._value
        return value

    def peek(self) -> T | None:
        """Return this process's object if one was made, without making one."""
        return self._value

    def take(self) -> T | None:
        """Forget this process's object and return it, if one was made."""
        with self._lock:
            value, self._value = self._value, None
        return value

    def _forget(self) -> None:
        self._value = None
        self._lock = threading.Lock()
