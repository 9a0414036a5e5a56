"""Pure scheduling decisions: trigger rules, retry delays, priority weights.

No loop, no store: each function takes the DAG and states and returns a decision, so that every
rule is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import timedelta

from asyncflow.models.baseoperator import BaseOperator
from asyncflow.models.dag import DAG
from asyncflow.models.trigger_rule import TriggerRule as TR
from asyncflow.models.trigger_rule import WeightRule
from asyncflow.states import TaskState

SCHEDULED, SKIPPED, UPSTREAM_FAILED = (
    TaskState.SCHEDULED,
    TaskState.SKIPPED,
    TaskState.UPSTREAM_FAILED,
)


class UpstreamCounts:
    """How many of a task's direct upstream ended in each finished state."""

    __slots__ = ("failed", "removed", "skipped", "success", "upstream_failed")

    def __init__(self) -> None:
        self.success = 0
        self.skipped = 0
        self.failed = 0
        self.upstream_failed = 0
        self.removed = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed + self.removed

    def add(self, state: TaskState, delta: int = 1) -> None:
        if state is TaskState.SUCCESS:
            self.success += delta
        elif state is TaskState.SKIPPED:
            self.skipped += delta
        elif state is TaskState.FAILED:
            self.failed += delta
        elif state is TaskState.UPSTREAM_FAILED:
            self.upstream_failed += delta
        elif state is TaskState.REMOVED:
            self.removed += delta


def decide(rule: TR, up: UpstreamCounts, total: int) -> TaskState | None:
    """What a task whose upstream are in `up` (of `total`) becomes now: SCHEDULED (run it),
    SKIPPED, UPSTREAM_FAILED, or None (wait). Airflow's trigger rule semantics, including
    deciding early (an `all_success` task fails as soon as one upstream fails)."""
    if total == 0 or rule is TR.ALWAYS:
        return SCHEDULED
    success, skipped, done = up.success, up.skipped, up.done
    failed = up.failed + up.upstream_failed
    all_done = done >= total
    if rule is TR.ALL_SUCCESS:
        if failed:
            return UPSTREAM_FAILED
        if skipped:
            return SKIPPED
        return SCHEDULED if success + up.removed >= total else None
    if rule is TR.ALL_FAILED:
        if success or skipped:
            return SKIPPED
        return SCHEDULED if all_done else None
    if rule is TR.ALL_DONE:
        return SCHEDULED if all_done else None
    if rule is TR.ALL_DONE_MIN_ONE_SUCCESS:
        if skipped:
            return SKIPPED
        if not all_done:
            return None
        return SCHEDULED if success else UPSTREAM_FAILED
    if rule is TR.ALL_SKIPPED:
        if success or failed:
            return SKIPPED
        return SCHEDULED if all_done else None
    if rule is TR.ONE_SUCCESS:
        if success:
            return SCHEDULED
        if all_done:
            return SKIPPED if skipped == done else UPSTREAM_FAILED
        return None
    if rule is TR.ONE_FAILED:
        if failed:
            return SCHEDULED
        return SKIPPED if all_done else None
    if rule is TR.ONE_DONE:
        if success or up.failed:  # upstream_failed does not count as done work
            return SCHEDULED
        return SKIPPED if all_done else None
    if rule is TR.NONE_FAILED:
        if failed:
            return UPSTREAM_FAILED
        return SCHEDULED if all_done else None
    if rule is TR.NONE_FAILED_MIN_ONE_SUCCESS:
        if failed:
            return UPSTREAM_FAILED
        if not all_done:
            return None
        return SKIPPED if skipped >= total else SCHEDULED
    if rule is TR.NONE_SKIPPED:
        if skipped:
            return SKIPPED
        return SCHEDULED if all_done else None
    raise AssertionError(f"unhandled trigger rule {rule!r}")


def retry_delay(task: BaseOperator, try_number: int) -> timedelta:
    """The wait before the next try after attempt `try_number` failed."""
    delay = task.retry_delay
    if task.retry_exponential_backoff:
        delay = delay * (2 ** max(0, try_number - 1))
        cap = task.max_retry_delay or timedelta(days=1)
        delay = min(delay, cap)
    elif task.max_retry_delay is not None:
        delay = min(delay, task.max_retry_delay)
    return delay


#: above this many tasks, weights sum over paths instead of counting distinct relatives
EXACT_WEIGHTS_LIMIT = 20_000


def priority_weights(dag: DAG) -> dict[str, int]:
    """Each task's effective priority: its own weight plus that of all its distinct downstream
    (`downstream`), upstream (`upstream`) or none (`absolute`) tasks, as Airflow's weight_rule.

    Relatives are int bitsets, indexed so that the bits a task carries are small: downstream
    sets by reverse topological position (leaves first), upstream sets by topological position
    (roots first). A 100,000-way fan-out then costs a few MiB, not one 12 KiB integer per task.
    Counting distinct relatives is quadratic for a long chain, so past EXACT_WEIGHTS_LIMIT
    tasks a weight is its own plus its direct relatives' weights (a sum over paths: exact for
    trees, larger for diamonds; the order it gives is what dispatch needs)."""
    order = dag.topological_sort()
    if len(order) > EXACT_WEIGHTS_LIMIT:
        return _path_weights(order, dag)
    below = _relatives(reversed(order), lambda t: t.downstream_task_ids)
    above = _relatives(order, lambda t: t.upstream_task_ids)
    uniform = all(t.priority_weight == 1 for t in order)
    weights: dict[str, int] = {}
    for task in order:
        if task.weight_rule is WeightRule.ABSOLUTE:
            weights[task.task_id] = task.priority_weight
            continue
        downstream = task.weight_rule is WeightRule.DOWNSTREAM
        mask, index_order = (below, order[::-1]) if downstream else (above, order)
        bits = mask[task.task_id]
        if uniform:
            extra = bits.bit_count()
        else:
            extra = sum(t.priority_weight for i, t in enumerate(index_order) if bits >> i & 1)
        weights[task.task_id] = task.priority_weight + extra
    return weights


def _relatives(
    ordered: Iterable[BaseOperator], near: Callable[[BaseOperator], set[str]]
) -> dict[str, int]:
    """For tasks in an order where each task's `near` relatives come first: the bitset of
    all its relatives (bit i = the i-th task of that order)."""
    index: dict[str, int] = {}
    masks: dict[str, int] = {}
    for i, task in enumerate(ordered):
        index[task.task_id] = i
        mask = 0
        for other in near(task):
            mask |= (1 << index[other]) | masks[other]
        masks[task.task_id] = mask
    return masks


def _path_weights(order: list[BaseOperator], dag: DAG) -> dict[str, int]:
    cap = 2**31 - 1
    below: dict[str, int] = {}
    for task in reversed(order):
        below[task.task_id] = min(
            cap, task.priority_weight + sum(below[d] for d in task.downstream_task_ids)
        )
    above: dict[str, int] = {}
    for task in order:
        above[task.task_id] = min(
            cap, task.priority_weight + sum(above[u] for u in task.upstream_task_ids)
        )
    weights = {}
    for task in order:
        if task.weight_rule is WeightRule.ABSOLUTE:
            weights[task.task_id] = task.priority_weight
        elif task.weight_rule is WeightRule.DOWNSTREAM:
            weights[task.task_id] = below[task.task_id]
        else:
            weights[task.task_id] = above[task.task_id]
    return weights
