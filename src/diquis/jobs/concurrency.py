"""Mutexes, concurrency limits, rate limits and partitions: the rules a claim obeys.

A target declares them at registration (``@jobs.job(mutex="tenant:{tenant_id}")``); each
job carries its own keys, formatted from its bound arguments when it is enqueued, so a
worker that claims it needs no registry. A job that may not start yet stays Enqueued
(never fails, never gets rescheduled) and is looked at again on the next claim. The slots
are the Processing rows themselves: when a server dies, the lifeline requeues its runs and
every mutex and slot they held is free again — nothing is ever held for ever.

:func:`pick` is the one place the rules are decided; every storage feeds it candidates in
queue order and what is running, inside its claim transaction.
"""

from __future__ import annotations

import inspect
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, JobArgumentError

_UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s*$")


def parse_rate(text: str) -> tuple[int, float]:
    """``"10/minute"`` (or ``"100/5 minutes"``) as (how many, per how many seconds)."""
    match = _RATE.match(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) < 1:
        raise ConfigurationError(
            f"rate_limit {text!r} is not like '10/minute' (second, minute, hour or day)"
        )
    every = int(match.group(2) or 1)
    return int(match.group(1)), every * _UNITS[match.group(3)]


def _check_template(option: str, template: str, target: str, sig: inspect.Signature) -> None:
    if not isinstance(template, str) or not template:
        raise ConfigurationError(f"{option}= of job target {target!r} must be a non-empty string")
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigurationError(f"{option}={template!r} of {target!r}: {exc}") from None
    for field in fields:
        root = re.split(r"[.\[]", field, maxsplit=1)[0]
        if not root or root.isdigit():
            raise ConfigurationError(
                f"{option}={template!r} of {target!r}: name the argument, e.g. {{tenant_id}}"
            )
        if root not in sig.parameters and not takes_any:
            raise ConfigurationError(
                f"{option}={template!r} of job target {target!r} names {root!r}, which is not "
                f"one of its parameters ({', '.join(sig.parameters) or 'none'})"
            )


@dataclass(frozen=True)
class Concurrency:
    """A target's claim rules, as declared at registration (checked there)."""

    mutex: str | None = None
    limit: int | None = None
    rate_limit: str | None = None
    rate_key: str | None = None
    partition: str | None = None

    def check(self, target: str, sig: inspect.Signature) -> None:
        """ConfigurationError for a bad option or a template naming an unknown argument."""
        for option, template in (
            ("mutex", self.mutex),
            ("rate_key", self.rate_key),
            ("partition", self.partition),
        ):
            if template is not None:
                _check_template(option, template, target, sig)
        if self.limit is not None and (
            isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1
        ):
            raise ConfigurationError(f"limit= of {target!r} must be a positive int")
        if self.rate_key is not None and self.rate_limit is None:
            raise ConfigurationError(f"rate_key= of {target!r} needs a rate_limit=")
        if self.rate_limit is not None:
            parse_rate(self.rate_limit)

    @property
    def empty(self) -> bool:
        """Whether the target declares no rule at all."""
        return (
            self.mutex is None
            and self.limit is None
            and self.rate_limit is None
            and self.rate_key is None
            and self.partition is None
        )

    def keys(
        self, target: str, sig: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """The NewJob fields for one job: its keys formatted over its bound arguments."""
        if self.empty:
            return {}
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        values = dict(bound.arguments)
        for param in sig.parameters.values():
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                values.update(values.pop(param.name, {}))

        def fmt(option: str, template: str | None) -> str | None:
            if template is None:
                return None
            try:
                return template.format(**values)
            except (KeyError, IndexError, AttributeError) as exc:
                raise JobArgumentError(
                    f"{option}={template!r} of {target!r} cannot be formatted: {exc}"
                ) from None

        fields: dict[str, Any] = {
            "mutex_key": fmt("mutex", self.mutex),
            "limit": self.limit,
            "partition_key": fmt("partition", self.partition),
        }
        if self.rate_limit is not None:
            n, period = parse_rate(self.rate_limit)
            fields["rate_key"] = fmt("rate_key", self.rate_key) or f"target:{target}"
            fields["rate_n"], fields["rate_period"] = n, period
        return fields


#: a target with no rules
NO_RULES = Concurrency()


@dataclass(frozen=True)
class Candidate:
    """An Enqueued job a claim may take, with what decides whether it may start now."""

    id: int
    target: str
    mutex_key: str | None
    limit: int | None
    rate_key: str | None
    rate_n: int | None
    rate_period: float | None
    partition_key: str | None


@dataclass
class Running:
    """What is running now (the Processing rows) everywhere."""

    mutexes: set[str]
    per_target: Counter[str]
    in_queue: int


def round_robin(groups: Iterable[Sequence[Candidate]]) -> list[Candidate]:
    """Each group's first job, then each group's second...: fair between partitions."""
    ranked = [(rank, c.id, c) for group in groups for rank, c in enumerate(group)]
    return [c for _, _, c in sorted(ranked, key=lambda t: (t[0], t[1]))]


def pick(
    candidates: Sequence[Candidate],
    running: Running,
    want: int,
    queue_limit: int | None,
    started_since: Callable[[str, float], int],
) -> list[int]:
    """The ids of the candidates (in order) that may start now, at most ``want``.

    ``started_since(rate_key, period)`` counts the jobs with that key started in the last
    ``period`` seconds (asked once per key).
    """
    if queue_limit is not None:
        want = min(want, queue_limit - running.in_queue)
    chosen: list[int] = []
    mutexes = set(running.mutexes)
    per_target = Counter(running.per_target)
    rates: dict[str, int] = {}
    for c in candidates:
        if len(chosen) >= want:
            break
        if c.mutex_key is not None and c.mutex_key in mutexes:
            continue
        if c.limit is not None and per_target[c.target] >= c.limit:
            continue
        if c.rate_key is not None and c.rate_n is not None and c.rate_period is not None:
            if c.rate_key not in rates:
                rates[c.rate_key] = started_since(c.rate_key, c.rate_period)
            if rates[c.rate_key] >= c.rate_n:
                continue
            rates[c.rate_key] += 1
        if c.mutex_key is not None:
            mutexes.add(c.mutex_key)
        per_target[c.target] += 1
        chosen.append(c.id)
    return chosen


def check_queue_limit(queue: str, n: int | None) -> None:
    """JobArgumentError unless ``n`` is a positive int (or None: no limit)."""
    if not isinstance(queue, str) or not queue.strip():
        raise JobArgumentError(f"queue must be a non-empty string, got {queue!r}")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise JobArgumentError(f"a queue limit must be a positive int or None, got {n!r}")


QueueLimits = Mapping[str, int]

__all__ = [
    "NO_RULES",
    "Candidate",
    "Concurrency",
    "QueueLimits",
    "Running",
    "check_queue_limit",
    "parse_rate",
    "pick",
    "round_robin",
]
