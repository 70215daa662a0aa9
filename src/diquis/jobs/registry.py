"""The registry of job targets: the only code a worker will ever call.

A job row names its target by a registered name; a worker resolves that name here and
refuses anything else, so a row forged in the jobs table cannot import or call arbitrary
code.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .concurrency import NO_RULES, Concurrency
from .errors import ConfigurationError, JobArgumentError, UnknownTargetError
from .retry import RetryPolicy

#: keyword names that enqueue() and friends take as options, not as job arguments
RESERVED_OPTIONS = frozenset({"queue", "tags", "unique_key", "connection", "delay", "at", "on"})

Activator = Callable[[type[Any]], Any]

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


@dataclass(frozen=True)
class Target:
    """A registered job target: a function, or a method of a class built per run."""

    name: str
    func: Callable[..., Any]
    owner: type[Any] | None
    factory: Callable[[], Any] | None
    queue: str | None
    retry: RetryPolicy | None
    #: the call signature jobs are checked against (without ``self`` for methods)
    signature: inspect.Signature
    #: a coroutine function runs on the loop; anything else in the thread pool
    is_async: bool
    #: mutex, limits and partition its jobs are claimed under
    concurrency: Concurrency = NO_RULES

    @functools.cached_property
    def plain_arity(self) -> int:
        """How many positional arguments fill the signature exactly (-1: not that simple)."""
        params = self.signature.parameters.values()
        if all(p.kind in _POSITIONAL and p.default is p.empty for p in params):
            return len(params)
        return -1

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise JobArgumentError if the arguments do not fit the target's signature."""
        if not kwargs and len(args) == self.plain_arity:
            return  # the common case, decided without binding (enqueue's hot path)
        try:
            self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise JobArgumentError(
                f"arguments do not fit job target {self.name!r}: {exc}"
            ) from None

    @contextlib.asynccontextmanager
    async def activated(self, activator: Activator) -> Any:
        """Yield the callable to run: the function, or the method of a freshly built instance."""
        if self.owner is None:
            yield self.func
            return
        instance: Any = self.factory() if self.factory is not None else activator(self.owner)
        if inspect.isawaitable(instance):
            instance = await instance
        if hasattr(instance, "__aenter__"):
            async with instance as entered:
                yield getattr(entered, self.func.__name__)
        elif hasattr(instance, "__enter__"):
            with instance as entered:
                yield getattr(entered, self.func.__name__)
        else:
            yield getattr(instance, self.func.__name__)


def default_activator(cls: type[Any]) -> Any:
    """Build a job class with no arguments (override with an activator or a factory)."""
    return cls()


class Registry:
    """Named job targets; resolves names for workers and objects for clients."""

    def __init__(self) -> None:
        self._by_name: dict[str, Target] = {}
        self._by_func: dict[Callable[..., Any], Target] = {}

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        """All registered target names, sorted."""
        return sorted(self._by_name)

    def add_function(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        owner: type[Any] | None = None,
        factory: Callable[[], Any] | None = None,
        concurrency: Concurrency | None = None,
    ) -> Target:
        """Register one function (or an unbound method of ``owner``) as a job target."""
        if not callable(func):
            raise ConfigurationError(f"job target {func!r} is not callable")
        target_name = name or f"{func.__module__}.{func.__qualname__}"
        signature = inspect.signature(func)
        if owner is not None:
            params = list(signature.parameters.values())[1:]  # drop self
            signature = signature.replace(parameters=params)
        for param in signature.parameters.values():
            if param.kind is inspect.Parameter.KEYWORD_ONLY and param.name in RESERVED_OPTIONS:
                raise ConfigurationError(
                    f"job target {target_name!r} has a keyword-only parameter {param.name!r}, "
                    f"a name enqueue() takes as an option ({', '.join(sorted(RESERVED_OPTIONS))})"
                )
        rules = concurrency or Concurrency()
        rules.check(target_name, signature)
        existing = self._by_name.get(target_name)
        if existing is not None and existing.func is not func:
            raise ConfigurationError(f"job target name {target_name!r} is already registered")
        target = Target(
            target_name,
            func,
            owner,
            factory,
            queue,
            retry,
            signature,
            inspect.iscoroutinefunction(func),
            rules,
        )
        self._by_name[target_name] = target
        self._by_func[func] = target
        return target

    def add_class(
        self,
        cls: type[Any],
        *,
        methods: list[str] | None = None,
        factory: Callable[[], Any] | None = None,
        queue: str | None = None,
        retry: RetryPolicy | None = None,
        prefix: str | None = None,
        concurrency: Concurrency | None = None,
    ) -> list[Target]:
        """Register public methods of ``cls``; each run builds an instance via ``factory``."""
        chosen = methods or [
            n for n, v in vars(cls).items() if not n.startswith("_") and inspect.isfunction(v)
        ]
        base = prefix or f"{cls.__module__}.{cls.__qualname__}"
        targets = []
        for method in chosen:
            func = vars(cls).get(method)
            if not inspect.isfunction(func):
                raise ConfigurationError(f"{cls.__qualname__}.{method} is not a plain method")
            targets.append(
                self.add_function(
                    func,
                    name=f"{base}.{method}",
                    queue=queue,
                    retry=retry,
                    owner=cls,
                    factory=factory,
                    concurrency=concurrency,
                )
            )
        return targets

    def by_name(self, name: str) -> Target:
        """The target registered as ``name``; UnknownTargetError otherwise."""
        target = self._by_name.get(name)
        if target is None:
            raise UnknownTargetError(f"job target {name!r} is not registered with this app")
        return target

    def resolve(self, target: Callable[..., Any] | str) -> Target:
        """The registered target for a function, an (un)bound method, or a name."""
        if isinstance(target, str):
            return self.by_name(target)
        func = getattr(target, "__func__", target)
        found = self._by_func.get(func)
        if found is None:
            label = getattr(func, "__qualname__", repr(func))
            raise UnknownTargetError(
                f"{label} is not a registered job target; register it with @engine.job "
                "or engine.register_class()"
            )
        return found
