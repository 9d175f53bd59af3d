"""kopf's shutdown, step by step, for tests of what our tasks leave behind when the operator stops.

When its root tasks end (SIGTERM), kopf takes every task of the loop created after its start and still
pending, waits a few seconds for them, cancels what is left, then raises the exception of each one that
ended with one: a task's exception fails the whole process even when whoever awaited the task caught it.
`started()` marks kopf's start, `stopping()` the moment the root tasks are gone, `stop()` the rest.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Set
from dataclasses import dataclass

GRACE_SECONDS = 5.0
"""How long kopf waits for pending tasks before it cancels them."""


@dataclass(frozen=True, slots=True)
class Stopped:
    raised: list[BaseException]
    """The exceptions kopf would raise: the process's failure."""
    hung: list[asyncio.Task[object]]
    """Tasks still pending after the grace, which kopf cancels (and logs as hung)."""


def started() -> Set[asyncio.Task[object]]:
    """The tasks kopf ignores at shutdown: those that existed at its start."""
    return frozenset(asyncio.all_tasks())


def stopping(ignored: Collection[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    """The tasks kopf will wait for: created since its start and still pending now."""
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current and task not in ignored}


async def stop(tasks: Collection[asyncio.Task[object]], grace: float = GRACE_SECONDS) -> Stopped:
    """Wait up to `grace` seconds for `tasks`, cancel the rest, and collect what kopf would raise."""
    if not tasks:
        return Stopped([], [])
    done, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    raised = [
        error
        for task in (*done, *pending)
        if not task.cancelled() and (error := task.exception()) is not None
    ]
    return Stopped(raised, sorted(pending, key=lambda task: task.get_name()))
