"""Pure scheduling decisions: trigger rules, retry delays, priority weights.

No loop, no store: each function takes the DAG and states and returns a decision, so that every
rule is unit-tested on its own.
"""

from __future__ import annotations

from collections.abc import Callable
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

    __slots__ = ("extra", "failed", "removed", "skipped", "success", "upstream_failed")

    def __init__(self) -> None:
        #: upstream task instances beyond one per upstream task (mapped upstream: n - 1 each)
        self.extra = 0
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
    total += up.extra
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
    if rule is TR.ALL_DONE or rule is TR.ALL_DONE_SETUP_SUCCESS:  # setups: the mirror's
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


#: the longest wait between two tries with exponential backoff (Airflow's MAX_RETRY_DELAY)
MAX_RETRY_DELAY = timedelta(hours=24)


def retry_delay(task: BaseOperator, try_number: int) -> timedelta:
    """The wait before the next try after attempt `try_number` failed.

    With `retry_exponential_backoff`, `retry_delay` doubles at each try and is capped at
    `max_retry_delay` and at `MAX_RETRY_DELAY` (24 h), as in Airflow; the doubling is computed
    in float seconds so that no try number overflows. Without it, `retry_delay` as given
    (already clamped to about 100 years at load), capped by `max_retry_delay` if set."""
    delay = task.retry_delay
    if task.retry_exponential_backoff:
        exponent = min(max(0, try_number - 1), 64)  # 2**64 seconds is past any cap
        seconds = min(delay.total_seconds() * 2.0**exponent, MAX_RETRY_DELAY.total_seconds())
        delay = timedelta(seconds=seconds)
    if task.max_retry_delay is not None:
        delay = min(delay, task.max_retry_delay)
    return delay


def priority_weights(dag: DAG) -> dict[str, int]:
    """Each task's effective priority: its own weight plus that of all its distinct downstream
    (`downstream`), upstream (`upstream`) or none (`absolute`) tasks, as Airflow's weight_rule.

    Relatives are int bitsets, indexed so that the bits a task carries are small (leaves first
    for downstream sets, roots first for upstream sets), and each bitset is dropped once the
    last task that needs it has read it. A 100,000-way fan-out costs well under a second and
    no memory to speak of; a long chain is the worst case, O(N^2 / 64) word operations."""
    order = dag.topological_sort()
    uniform = all(t.priority_weight == 1 for t in order)
    below = _closure(
        order[::-1], lambda t: t.downstream_task_ids, lambda t: t.upstream_task_ids, uniform
    )
    above = _closure(order, lambda t: t.upstream_task_ids, lambda t: t.downstream_task_ids, uniform)
    weights: dict[str, int] = {}
    for task in order:
        if task.weight_rule is WeightRule.DOWNSTREAM:
            extra = below[task.task_id]
        elif task.weight_rule is WeightRule.UPSTREAM:
            extra = above[task.task_id]
        else:  # absolute; a PriorityWeightStrategy is asked per instance (engine/weights.py)
            extra = 0
        weights[task.task_id] = task.priority_weight + extra
    return weights


def _closure(
    seq: list[BaseOperator],
    relatives_of: Callable[[BaseOperator], set[str]],
    consumers_of: Callable[[BaseOperator], set[str]],
    uniform: bool,
) -> dict[str, int]:
    """`seq` lists each task after its relatives; bit i stands for seq[i]. Returns the weight
    each task gets from all its relatives; a bitset lives only until its last consumer read it."""
    index = {t.task_id: i for i, t in enumerate(seq)}
    masks: dict[str, int] = {}
    pending: dict[str, int] = {}
    totals: dict[str, int] = {}
    for i, task in enumerate(seq):
        relatives = relatives_of(task)
        mask = 0
        if relatives:
            bits = bytearray((max(index[r] for r in relatives) >> 3) + 1)
            for r in relatives:  # own bits through a bytearray: linear for a wide fan-in
                j = index[r]
                bits[j >> 3] |= 1 << (j & 7)
                mask |= masks[r]
                pending[r] -= 1
                if pending[r] == 0:
                    del masks[r], pending[r]
            mask |= int.from_bytes(bits, "little")
        if uniform:
            totals[task.task_id] = mask.bit_count()
        else:
            totals[task.task_id] = sum(seq[j].priority_weight for j in range(i) if mask >> j & 1)
        consumers = len(consumers_of(task))
        if consumers:
            masks[task.task_id], pending[task.task_id] = mask, consumers
    return totals
