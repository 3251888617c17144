"""Two searches of one packing side by side on the wall clock, each on a core of its own.

The pattern phases of a plain packing (`engine._solve_as_patterns`) run on one core: pattern
listing, column generation and the diving search are Python and HiGHS's simplex, and CP-SAT takes a
second worker for a fraction of the time. On hard instances their outcome turns on small
things (the seed, where the LP's vertex lies, how far a dive gets by the deadline), so a
second search of the same packing that goes another way, in a forked process on the idle
core, packs instances the first misses. The engine chooses the two searches
(`engine._patterns_raced`); this module runs them: the parent's with the workers less one,
the rival's on one. Whichever finishes with an answer that cannot be beaten (`done`) ends
the other (the parent's clock jumps past every deadline once the rival reports one, so no
phase needs to know of it); otherwise the better of the two answers is kept (`better`).

Only the wall clock races: on the counted clock the answer must not depend on which process
wins. Where the platform cannot fork, or one worker is asked for, the search runs alone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from multiprocessing import Pipe
from multiprocessing.connection import Connection
from typing import Generic, TypeVar

from solvers.clock import Clock, current, using

T = TypeVar("T")

CHECK_S = 0.01  # the least time between two looks at the pipe for the rival's answer
FINISHED_S = 1e6  # how far the parent's clock jumps once the rival's answer cannot be beaten
GRACE_S = 0.5  # how long past the deadline the parent waits for the rival's answer


def can_race(workers: int) -> bool:
    """Whether a search may race a rival: on the wall clock, with two workers or more, where
    the platform forks."""
    return workers >= 2 and not current().deterministic and hasattr(os, "fork")


class _Rivalled(Clock, Generic[T]):
    """The wall clock, which ends every deadline once the rival reports an answer that is
    `done`: the parent's phases all read it, so none needs to know of the rival."""

    def __init__(self, reader: Connection, done: Callable[[T], bool]):
        self.reader, self.done = reader, done
        self.answer: T | None = None
        self.open = True  # whether the rival may still report
        self.finished = False  # whether its answer cannot be beaten
        self.checked = 0.0

    def now(self) -> float:
        wall = time.perf_counter()
        if self.open and wall - self.checked >= CHECK_S:
            self.checked = wall
            self.read(0.0)
        return wall + FINISHED_S if self.finished else wall

    def read(self, timeout_s: float) -> None:
        """Take the rival's answer if it arrives within `timeout_s`."""
        try:
            if self.open and self.reader.poll(max(timeout_s, 0.0)):
                answer = self.reader.recv()
                self.answer, self.open, self.finished = answer, False, self.done(answer)
        except (EOFError, OSError):  # the rival ended without an answer
            self.open = False


def race(own: Callable[[], T], rival: Callable[[], T], *, deadline_s: float,
         done: Callable[[T], bool], better: Callable[[T, T], T]) -> T:
    """`own()` here and `rival()` in a forked process, both ending by `deadline_s` (seconds of
    `time.perf_counter`): the first answer that is `done`, else `better(own's, rival's)`, or
    this process's own where the rival gives none by the deadline (it is then stopped). Call
    only where `can_race`."""
    reader, writer = Pipe(duplex=False)
    pid = os.fork()
    if pid == 0:  # the rival: it answers through the pipe and leaves without cleaning up
        try:
            reader.close()
            writer.send(rival())
        finally:
            os._exit(0)
    writer.close()
    clock: _Rivalled[T] = _Rivalled(reader, done)
    try:
        with using(clock):
            answer = own()
        if not done(answer):
            clock.read(deadline_s + GRACE_S - time.perf_counter())
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        reader.close()
    return answer if clock.answer is None else better(answer, clock.answer)
