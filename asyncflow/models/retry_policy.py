"""Retry policies (Airflow 3.3's): after a failed try, decide from the exception whether to
retry (with a delay of its own), fail at once, or do what `retries` / `retry_delay` say.

    policy = ExceptionRetryPolicy(rules=[
        RetryRule(exception=ConnectionError, retry_delay=timedelta(seconds=30)),
        RetryRule(exception="mylib.AuthError", action=RetryAction.FAIL, reason="bad key"),
    ])
    @task(retries=5, retry_policy=policy)

The policy is asked in the attempt that failed (it sees the exception itself), never for
`AsyncflowFailException` or a sensor's timeout (those always fail). It can end the retries
early but never adds any: a RETRY with no retries left fails like any other failure. A policy
that raises is logged and the ordinary rules apply.
"""

from __future__ import annotations

import importlib
import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import timedelta
from enum import Enum
from typing import Any


class RetryAction(Enum):
    RETRY = "retry"  # retry, within the task's retries, after the rule's delay if it has one
    FAIL = "fail"  # fail now, whatever retries are left
    DEFAULT = "default"  # the task's ordinary retries and retry_delay


@dataclass(frozen=True)
class RetryDecision:
    """What a policy decided for one failure."""

    action: RetryAction = RetryAction.DEFAULT
    retry_delay: timedelta | None = None  # None: the task's own retry_delay
    reason: str | None = None

    @classmethod
    def fail(cls, reason: str | None = None) -> RetryDecision:
        return cls(RetryAction.FAIL, None, reason)

    @classmethod
    def retry(cls, delay: timedelta | None = None, reason: str | None = None) -> RetryDecision:
        return cls(RetryAction.RETRY, delay, reason)

    @classmethod
    def default(cls) -> RetryDecision:
        return cls()


class RetryPolicy(ABC):
    """Subclass it for a policy of your own: `evaluate` gets the exception, the try that
    failed (1-based), the task's max tries and the context."""

    @abstractmethod
    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:  # fmt: skip
        """The decision for this failure."""


ExceptionSpec = type[BaseException] | str


@dataclass
class RetryRule:
    """Exceptions (classes or dotted paths, one or a list) and what to do when one is raised
    (a subclass counts unless `match_subclasses=False`)."""

    exception: ExceptionSpec | list[ExceptionSpec]
    action: RetryAction = RetryAction.RETRY
    retry_delay: timedelta | None = None
    reason: str | None = None
    match_subclasses: bool = True
    _classes: tuple[type[BaseException], ...] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.action, RetryAction):
            raise ValueError(f"RetryRule action={self.action!r} is not a RetryAction")
        if self.retry_delay is not None and not isinstance(self.retry_delay, timedelta):
            raise ValueError(f"RetryRule retry_delay={self.retry_delay!r} is not a timedelta")
        for spec in self.specs:
            if isinstance(spec, str):
                if "." not in spec:
                    raise ValueError(
                        f"RetryRule exception {spec!r} is not a dotted path: write the class "
                        "or its full path ('builtins.ValueError', 'requests.HTTPError')"
                    )
            elif not (isinstance(spec, type) and issubclass(spec, BaseException)):
                raise ValueError(f"RetryRule exception {spec!r} is not an exception class")
        self._classes = self._resolve()

    @property
    def specs(self) -> list[ExceptionSpec]:
        return list(self.exception) if isinstance(self.exception, list) else [self.exception]

    def _resolve(self) -> tuple[type[BaseException], ...]:
        """The classes the rule names; a path that does not import matches nothing (warned:
        the library may simply not be installed, as in Airflow)."""
        found: list[type[BaseException]] = []
        for spec in self.specs:
            if isinstance(spec, type):
                found.append(spec)
                continue
            module, _, name = spec.rpartition(".")
            try:
                cls = getattr(importlib.import_module(module), name)
            except (ImportError, AttributeError) as exc:
                warnings.warn(
                    f"RetryRule exception {spec!r} cannot be imported ({exc}): the rule will "
                    "not match it; check the path, or install the library",
                    UserWarning,
                    stacklevel=4,
                )
                continue
            if isinstance(cls, type) and issubclass(cls, BaseException):
                found.append(cls)
            else:
                raise ValueError(f"RetryRule exception {spec!r} names {cls!r}, not an exception")
        return tuple(found)

    def matches(self, exc: BaseException) -> bool:
        classes = self._classes or ()
        if self.match_subclasses:
            return isinstance(exc, classes)
        return type(exc) in classes


class ExceptionRetryPolicy(RetryPolicy):
    """Rules tried in order; the first that matches decides, else `default`."""

    def __init__(self, rules: list[RetryRule], default: RetryAction = RetryAction.DEFAULT):
        if not all(isinstance(rule, RetryRule) for rule in rules):
            raise ValueError(f"ExceptionRetryPolicy rules={rules!r:.80} are not all RetryRule")
        self.rules = list(rules)
        self.default = default

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:  # fmt: skip
        for rule in self.rules:
            if rule.matches(exception):
                reason = rule.reason or f"matched the rule for {type(exception).__name__}"
                return RetryDecision(rule.action, rule.retry_delay, reason)
        return RetryDecision(self.default)
