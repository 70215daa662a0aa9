"""The engine's pure parts, without storage: serialization, the target registry, retries."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest

from diquis.jobs import JobCancelledError, RetryPolicy
from diquis.jobs.errors import ConfigurationError, JobArgumentError, UnknownTargetError
from diquis.jobs.registry import Registry
from diquis.jobs.retry import NO_RETRY, hangfire_backoff
from diquis.jobs.serialization import dumps_args, dumps_value, loads_args, loads_value

# -- serialization -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        3,
        1.5,
        "text ü",
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
        dt.date(2026, 1, 2),
        dt.time(3, 4, 5),
        Decimal("1.10"),
        b"\x00\xff",
        {"$uuid": "a user dict shaped like a tag"},
        {"nested": [1, {"d": Decimal("2")}]},
    ],
)
def test_values_round_trip_exactly(value: Any) -> None:
    back = loads_value(dumps_value(value))
    assert back == value and type(back) is type(value)


def test_args_and_kwargs_round_trip() -> None:
    args, kwargs = dumps_args((1, "x"), {"when": dt.date(2026, 1, 1)})
    assert loads_args(args, kwargs) == ([1, "x"], {"when": dt.date(2026, 1, 1)})
    # positional tagged values, and text with braces that is no tag, both ways round
    tagged = (uuid.UUID(int=7), [Decimal("1.5")], "{not a tag}", {"$uuid": "user data"})
    args, kwargs = dumps_args(tagged, {})
    assert loads_args(args, kwargs) == (list(tagged), {})
    assert loads_args(*dumps_args((1, "[x]", None, [2.5]), {})) == ([1, "[x]", None, [2.5]], {})


def test_a_job_context_is_cancelled_for_pollers_and_for_waiters() -> None:
    import threading

    from diquis.jobs import JobContext

    early = JobContext(1, "t", "default", 1, 0, "s")
    early.cancel("deleted")  # before anyone asked for the event
    assert early.is_cancelled and early.cancelled.is_set()
    with pytest.raises(JobCancelledError, match="deleted"):
        early.raise_if_cancelled()
    late = JobContext(2, "t", "default", 1, 0, "s")
    assert not late.is_cancelled
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: late.cancelled.wait(5) and woke.set())
    waiter.start()
    late.cancel("server shutting down")
    waiter.join(5)
    assert woke.is_set() and late.cancel_reason == "server shutting down"


@pytest.mark.parametrize(
    ("kwargs", "path"),
    [
        ({"user": object()}, "kwargs['user']"),
        ({"x": [1, float("nan")]}, "kwargs['x'][1]"),
        ({"m": {1: "int key"}}, "kwargs['m']"),
    ],
)
def test_a_bad_argument_is_refused_naming_its_path(kwargs: dict[str, Any], path: str) -> None:
    with pytest.raises(JobArgumentError, match=path.replace("[", r"\[").replace("]", r"\]")):
        dumps_args((), kwargs)


# -- registry ------------------------------------------------------------------------


def _send(to: str, *, subject: str = "") -> None: ...


async def _async_send(to: str) -> None: ...


class Mailer:
    def send(self, to: str) -> str:
        return f"sent {to}"

    def _private(self) -> None: ...


def test_functions_register_under_their_qualified_name_and_resolve() -> None:
    registry = Registry()
    target = registry.add_function(_send)
    assert target.name == f"{__name__}._send" and not target.is_async
    assert registry.resolve(_send) is target and registry.by_name(target.name) is target
    assert registry.add_function(_async_send, name="mail.async").is_async
    assert "mail.async" in registry and registry.names() == sorted(registry.names())


def test_arguments_are_checked_against_the_signature() -> None:
    target = Registry().add_function(_send)
    target.check_arguments(("a@b.c",), {"subject": "hi"})
    with pytest.raises(JobArgumentError, match="do not fit"):
        target.check_arguments((), {"nobody": 1})


def test_a_name_is_registered_once_and_options_are_not_parameters() -> None:
    registry = Registry()
    registry.add_function(_send, name="mail.send")
    with pytest.raises(ConfigurationError, match="already registered"):
        registry.add_function(_async_send, name="mail.send")

    def takes_queue(*, queue: str) -> None: ...

    with pytest.raises(ConfigurationError, match="queue"):
        registry.add_function(takes_queue)


def test_classes_register_their_public_methods_and_build_an_instance_per_run() -> None:
    registry = Registry()
    (target,) = registry.add_class(Mailer, prefix="mail.Mailer")
    assert target.name == "mail.Mailer.send" and list(target.signature.parameters) == ["to"]
    assert registry.resolve(Mailer().send) is target


async def test_an_activated_method_runs_on_a_fresh_instance() -> None:
    (target,) = Registry().add_class(Mailer)
    async with target.activated(lambda cls: cls()) as fn:
        assert fn("x") == "sent x"


def test_unknown_targets_are_named() -> None:
    with pytest.raises(UnknownTargetError, match="'nope'"):
        Registry().by_name("nope")
    with pytest.raises(UnknownTargetError, match="_send"):
        Registry().resolve(_send)


# -- retry ---------------------------------------------------------------------------


def test_attempts_count_retries_after_the_first_run() -> None:
    policy = RetryPolicy(attempts=2)
    assert policy.should_retry(ValueError(), 0) and policy.should_retry(ValueError(), 1)
    assert not policy.should_retry(ValueError(), 2)
    assert not NO_RETRY.should_retry(ValueError(), 0)


def test_retry_on_and_dont_retry_on_choose_exceptions() -> None:
    policy = RetryPolicy(retry_on=(OSError,), dont_retry_on=(FileNotFoundError,))
    assert policy.should_retry(ConnectionError(), 0)
    assert not policy.should_retry(FileNotFoundError(), 0)
    assert not policy.should_retry(ValueError(), 0)


def test_delays_fixed_with_the_last_repeating_or_a_function() -> None:
    fixed = RetryPolicy(delays=[1, 5])
    assert [fixed.delay(n) for n in (1, 2, 3)] == [1.0, 5.0, 5.0]
    assert RetryPolicy(delays=lambda n: -n).delay(1) == 0.0
    assert all(2**4 + 15 <= RetryPolicy().delay(3) <= 2**4 + 15 + 29 * 3 for _ in range(20))
    assert hangfire_backoff(1) >= 15


def test_a_policy_that_cannot_work_is_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=-1)
    with pytest.raises(ValueError, match="delays"):
        RetryPolicy(delays=[])
