"""Seconds spent per stage of one question, summed from wherever the work happens.

The answer pipeline opens a clock for its Turn (`measuring(turn.timings)`); code deep inside a step that
does costly work of one kind (a spaCy parse, a cross-encoder run) adds its time under that kind's name
with `stage(name)`, wherever it is called from. Outside a measured question, `stage` costs nothing.

>>> timings: dict[str, float] = {}
>>> with measuring(timings):
...     with stage("parse_s"):
...         pass
>>> sorted(timings)
['parse_s']
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class _Clock:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings
        self.running: set[str] = set()


_CLOCK: ContextVar[_Clock | None] = ContextVar("assistant_stage_clock", default=None)


@contextmanager
def measuring(timings: dict[str, float]) -> Iterator[None]:
    """Within the block, `stage` adds to `timings` (the previous clock, if any, comes back after)."""
    previous = _CLOCK.get()
    _CLOCK.set(_Clock(timings))
    try:
        yield
    finally:
        # set, not reset(token): a generator may be closed from another context than the one it opened in
        _CLOCK.set(previous)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the block's seconds to `name` of the clock being measured (nested blocks of one name count once)."""
    clock = _CLOCK.get()
    if clock is None or name in clock.running:
        yield
        return
    clock.running.add(name)
    started = time.perf_counter()
    try:
        yield
    finally:
        clock.running.discard(name)
        clock.timings[name] = clock.timings.get(name, 0.0) + time.perf_counter() - started
