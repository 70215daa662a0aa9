"""Finds hub methods by wire name and runs invocations, answering per the hub protocol."""

from __future__ import annotations

import collections.abc
import inspect
import logging
import typing
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import HubDefinitionError, HubError
from .hub import HUB_BASE_NAMES, Hub

log = logging.getLogger(__name__)


def wire_key(name: str) -> str:
    """The lookup key of a method name: case-insensitive, underscores ignored."""
    return name.replace("_", "").lower()


@dataclass(frozen=True, slots=True)
class HubMethod:
    """One invocable method of a hub class."""

    name: str
    function: Callable[..., Any]
    signature: inspect.Signature
    streaming: bool
    # Positions (after self) of the parameters that read a client-to-server stream.
    stream_parameters: tuple[int, ...] = ()

    def bind(
        self, hub: Hub, arguments: tuple[Any, ...], streams: Sequence[Any] = ()
    ) -> inspect.BoundArguments | str:
        """Bind call arguments (and client streams), or return an error naming the mismatch."""
        if len(streams) != len(self.stream_parameters):
            return (
                f"Failed to invoke '{self.name}': expected {len(self.stream_parameters)} "
                f"stream(s), got {len(streams)}."
            )
        values = list(arguments)
        if streams:
            # Streams take their parameters' places; the other arguments fill the rest in order.
            for position, stream in zip(self.stream_parameters, streams, strict=True):
                if position > len(values):
                    return (
                        f"Failed to invoke '{self.name}': expected more arguments before "
                        "its stream parameter."
                    )
                values.insert(position, stream)
        try:
            return self.signature.bind(hub, *values)
        except TypeError:
            expected = [
                p
                for p in list(self.signature.parameters.values())[1:]
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            required = sum(1 for p in expected if p.default is p.empty)
            required -= len(self.stream_parameters)
            count = len(expected) - len(self.stream_parameters)
            wanted = str(required) if required == count else f"{required} to {count}"
            return (
                f"Failed to invoke '{self.name}': expected {wanted} argument(s), "
                f"got {len(arguments)}."
            )


class HubMethods:
    """The invocable methods of one Hub subclass."""

    def __init__(self, hub_type: type[Hub]) -> None:
        if not (isinstance(hub_type, type) and issubclass(hub_type, Hub)):
            raise HubDefinitionError("a hub must be a subclass of diquis.realtime.Hub")
        self.hub_type = hub_type
        self._methods: dict[str, HubMethod] = {}
        for name in dir(hub_type):
            if name.startswith("_") or name in HUB_BASE_NAMES:
                continue
            function = inspect.getattr_static(hub_type, name)
            if isinstance(function, staticmethod | classmethod) or not callable(function):
                continue
            streaming = inspect.isasyncgenfunction(function)
            if not (streaming or inspect.iscoroutinefunction(function)):
                continue
            key = wire_key(name)
            if key in self._methods:
                raise HubDefinitionError(
                    f"hub methods '{self._methods[key].name}' and '{name}' share the wire name "
                    f"'{key}'"
                )
            signature = inspect.signature(function)
            self._methods[key] = HubMethod(
                name, function, signature, streaming, _stream_parameters(function, signature)
            )

    def find(self, target: str) -> HubMethod | None:
        """The method a client means by `target`, if any."""
        return self._methods.get(wire_key(target))

    def names(self) -> list[str]:
        """The Python names of every invocable method."""
        return sorted(m.name for m in self._methods.values())


_STREAM_TYPES = (collections.abc.AsyncIterator, collections.abc.AsyncIterable)


def _stream_parameters(
    function: Callable[..., Any], signature: inspect.Signature
) -> tuple[int, ...]:
    """Which parameters (after self) are annotated AsyncIterator/AsyncIterable: client streams."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    positions = []
    for index, parameter in enumerate(list(signature.parameters.values())[1:]):
        hint = hints.get(parameter.name, parameter.annotation)
        if isinstance(hint, str):
            is_stream = hint.split("[", 1)[0].rsplit(".", 1)[-1] in (
                "AsyncIterator",
                "AsyncIterable",
            )
        else:
            origin = typing.get_origin(hint) or hint
            is_stream = isinstance(origin, type) and issubclass(origin, _STREAM_TYPES)
        if is_stream:
            positions.append(index)
    return tuple(positions)


def error_text(method: str, exc: BaseException, detailed: bool) -> str:
    """What the client is told about an exception: never internals, unless asked to."""
    if isinstance(exc, HubError):
        return str(exc) or f"An error occurred invoking '{method}'."
    generic = f"An unexpected error occurred invoking '{method}' on the server."
    if detailed:
        return f"{generic} {type(exc).__name__}: {exc}"
    return generic


async def call(method: HubMethod, bound: inspect.BoundArguments) -> Any:
    """Run a non-streaming hub method."""
    result: Awaitable[Any] = method.function(*bound.args, **bound.kwargs)
    return await result


def stream(method: HubMethod, bound: inspect.BoundArguments) -> AsyncIterator[Any]:
    """Start a streaming hub method."""
    iterator: AsyncIterator[Any] = method.function(*bound.args, **bound.kwargs)
    return iterator


__all__ = ["HubMethod", "HubMethods", "call", "error_text", "stream", "wire_key"]
