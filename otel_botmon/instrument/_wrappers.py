"""Generic "span and metrics around a call" machinery shared by the instrumentations.

A :class:`CallScope` is one object that is both a decorator and a (sync or async)
context manager, with fresh state per call (the habit of prometheus_client's ``Timer``):
every decorated call and every ``with`` block gets its own :class:`ActiveCall`, so one
scope object can be reused and entered concurrently from threads and asyncio tasks.

Subclasses supply two things:

* ``CallScope._begin(arguments)`` builds the per-call state (starts the span) from the
  values of the call's interesting parameters (``None`` for a ``with`` block);
* ``ActiveCall._record(exc, result, duration_s)`` records the metrics and final span
  attributes once the call is over.

Everything else lives here: one wrapper per function kind (sync, coroutine, generator,
async generator) keeping the wrapped signature, reading parameters by position or name
with the binding worked out once at decoration time, making the span current for the
body, marking it as an error when the body raises, and making sure nothing that goes
wrong inside the telemetry ever reaches the bot (``report_internal_error``).
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator, Mapping
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any, Generic, ParamSpec, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from otel_botmon import conventions
from otel_botmon._internal import report_internal_error

P = ParamSpec("P")
R = TypeVar("R")
StateT = TypeVar("StateT", bound="ActiveCall")

_MISSING: Any = object()
_INVALID_SPAN = trace.INVALID_SPAN

# The innermost ActiveCall of the current thread / asyncio task. Each ActiveCall keeps a
# link to its parent, so ``current(kind)`` can find e.g. the enclosing trade from inside
# an exchange call.
_CURRENT: ContextVar[ActiveCall | None] = ContextVar("otel_botmon_active_call", default=None)


def error_type(exc: BaseException) -> str:
    """The ``error.type`` value for an exception: its class's qualified name."""
    return type(exc).__qualname__


def current(kind: type[StateT]) -> StateT | None:
    """The innermost active call of type ``kind`` in this thread or task, if any."""
    state = _CURRENT.get()
    while state is not None:
        if isinstance(state, kind):
            return state
        state = state._parent
    return None


class ActiveCall:
    """The state of one instrumented call: its span, its start time, its parent call.

    Subclasses implement :meth:`_record`. ``_end`` runs it exactly once and never raises.
    """

    __slots__ = ("_component", "_done", "_otel_token", "_owner", "_parent", "_span",
                 "_start_ns", "_state_token")

    def __init__(self, span: Span, component: str) -> None:
        self._span = span
        self._component = component
        self._parent: ActiveCall | None = None
        self._owner: object = None  # the CallScope whose ``with`` block opened this call
        self._otel_token: Token[otel_context.Context] | None = None
        self._state_token: Token[ActiveCall | None] | None = None
        self._done = False
        self._start_ns = time.perf_counter_ns()

    @property
    def span(self) -> Span:
        """The span of this call (a non-recording span when tracing is off)."""
        return self._span

    def _record(self, exc: BaseException | None, result: object, duration_s: float) -> None:
        """Record metrics and final span attributes. Called once, before the span ends."""

    # --- lifecycle, driven by the wrappers and the context-manager protocol ------------

    def _activate(self) -> None:
        """Make this call's span (and this state) current until :meth:`_deactivate`."""
        try:
            self._parent = _CURRENT.get()
            self._state_token = _CURRENT.set(self)
            span = self._span
            if span is not _INVALID_SPAN:  # nothing to propagate: the parent stays current
                self._otel_token = otel_context.attach(trace.set_span_in_context(span))
        except Exception as exc:  # never let telemetry break the bot
            report_internal_error(self._component, exc)

    def _deactivate(self) -> None:
        try:
            if self._otel_token is not None:
                otel_context.detach(self._otel_token)
                self._otel_token = None
            if self._state_token is not None:
                token, self._state_token = self._state_token, None
                try:
                    _CURRENT.reset(token)
                except ValueError:
                    # Token made in another context (a generator finished elsewhere):
                    # fall back to restoring the parent by value.
                    _CURRENT.set(self._parent)
        except Exception as exc:
            report_internal_error(self._component, exc)

    def _end(
        self, exc: BaseException | None, result: object = None, *,
        exact: tuple[float, int] | None = None,
    ) -> None:
        """Record the call's outcome and end its span; idempotent; never raises.

        ``exact`` is ``(duration_s, end_time_ns)`` for a call recorded after the fact:
        the caller's duration is recorded as given, not re-measured with the time spent
        recording it (which would push a 2000 ms trade past a 2 s bucket boundary).
        """
        if self._done:
            return
        self._done = True
        if exact is None:
            duration_s = (time.perf_counter_ns() - self._start_ns) / 1e9
            end_time_ns: int | None = None
        else:
            duration_s, end_time_ns = exact
        span = self._span
        try:
            self._record(exc, result, duration_s)
        except Exception as internal:
            report_internal_error(self._component, internal)
        try:
            if exc is not None and span.is_recording():
                span.set_attribute(conventions.ERROR_TYPE, error_type(exc))
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, error_type(exc)))
            span.end(end_time=end_time_ns)
        except Exception as internal:
            report_internal_error(self._component, internal)


class ArgumentReader:
    """Reads the values of chosen parameters from a call's ``(args, kwargs)``.

    The binding (positional index, keyword name, default) is worked out once, at
    decoration time, so a call costs a few tuple/dict lookups rather than a
    ``Signature.bind``. ``None`` values are left out.
    """

    __slots__ = ("_slots",)

    def __init__(self, func: Callable[..., object], roles: Mapping[str, str]) -> None:
        """``roles`` maps a role (e.g. ``"symbol"``) to the parameter name to read."""
        slots: list[tuple[str, str, int, object]] = []
        try:
            parameters: Mapping[str, inspect.Parameter] | None = (
                inspect.signature(func).parameters
            )
        except (TypeError, ValueError):  # builtins without a signature: keywords only
            parameters = None
        if parameters is None:
            slots = [(role, name, -1, _MISSING) for role, name in roles.items()]
        else:
            positional = [
                p.name for p in parameters.values()
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            ]
            has_var_keyword = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
            for role, name in roles.items():
                param = parameters.get(name)
                if param is None or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                    if has_var_keyword:  # may still arrive through **kwargs
                        slots.append((role, name, -1, _MISSING))
                    continue
                index = positional.index(name) if name in positional else -1
                default = _MISSING if param.default is param.empty else param.default
                slots.append((role, name, index, default))
        self._slots = tuple(slots)

    def __bool__(self) -> bool:
        return bool(self._slots)

    def read(self, args: tuple[object, ...], kwargs: Mapping[str, object]) -> dict[str, Any]:
        """The role -> value mapping for one call (roles with no value are absent)."""
        found: dict[str, Any] = {}
        nargs = len(args)
        for role, name, index, default in self._slots:
            if 0 <= index < nargs:
                value = args[index]
            elif name in kwargs:
                value = kwargs[name]
            elif default is not _MISSING:
                value = default
            else:
                continue
            if value is not None:
                found[role] = value
        return found


class CallScope(Generic[StateT]):
    """Base of objects that are a decorator and a sync/async context manager.

    Subclasses implement :meth:`_begin` (start the span, build the state),
    :meth:`_disabled` (a state that records nothing, used when ``_begin`` failed) and
    optionally :meth:`_roles` (which call parameters to read).
    """

    __slots__ = ()

    #: the ``botmon.component`` label for internal errors of this scope
    _component: str = "instrument"
    #: the decorator's public name, for error messages
    _decorator_name: str = "instrument"

    def _roles(self) -> Mapping[str, str]:
        """Role -> parameter name to read from decorated calls."""
        return {}

    def _begin(self, arguments: Mapping[str, Any] | None, site: str) -> StateT:
        """Start a call. ``arguments`` is ``None`` for a ``with`` block."""
        raise NotImplementedError

    def _disabled(self) -> StateT:
        """A state that records nothing; must not fail."""
        raise NotImplementedError

    def _safe_begin(self, arguments: Mapping[str, Any] | None, site: str) -> StateT | None:
        try:
            return self._begin(arguments, site)
        except Exception as exc:
            report_internal_error(self._component, exc)
            return None

    # --- context manager ------------------------------------------------------------

    def _enter(self) -> StateT:
        state = self._safe_begin(None, f"with {self._decorator_name}(...)")
        if state is None:
            state = self._disabled()
        state._owner = self
        state._activate()
        return state

    def _exit(self, exc: BaseException | None) -> None:
        # Properly nested blocks make the innermost active call ours. Blocks exited out of
        # order (a bug in the caller's code, not the bot's trade) are reported, not raised.
        state = _CURRENT.get()
        while state is not None and state._owner is not self:
            state = state._parent
        if state is None:
            report_internal_error(
                self._component, RuntimeError(f"{type(self).__name__} exited but never entered")
            )
            return
        state._deactivate()
        state._end(exc)

    def __enter__(self) -> StateT:
        return self._enter()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc)

    async def __aenter__(self) -> StateT:
        return self._enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc)

    # --- decorator ------------------------------------------------------------------

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        return self.decorate(func)

    def decorate(self, func: Callable[P, R]) -> Callable[P, R]:
        """Wrap ``func``; raises TypeError now if ``func`` is not a function.

        A ``staticmethod`` or ``classmethod`` object (decorator written above it) is
        unwrapped, instrumented and re-wrapped, so the order of the decorators is free.
        """
        if isinstance(func, (staticmethod, classmethod)):
            rewrap = type(func)
            return cast(Callable[P, R], rewrap(self.decorate(func.__func__)))
        check_decoratable(func, self._decorator_name)
        reader = ArgumentReader(func, self._roles())
        site = getattr(func, "__qualname__", None) or repr(func)
        if inspect.isasyncgenfunction(func):
            return cast(Callable[P, R], _wrap_async_generator(self, func, reader, site))
        if inspect.iscoroutinefunction(func):
            return cast(Callable[P, R], _wrap_coroutine(self, func, reader, site))
        if inspect.isgeneratorfunction(func):
            return cast(Callable[P, R], _wrap_generator(self, func, reader, site))
        return _wrap_sync(self, func, reader, site)


def check_decoratable(func: object, what: str) -> None:
    """Raise TypeError, naming the problem, unless ``func`` can be instrumented.

    ``what`` is the decorator's name as users write it (``"trade"``).
    """
    if isinstance(func, type):
        raise TypeError(
            f"@{what} decorates functions and methods, not classes: got class "
            f"{func.__qualname__!r}; decorate the method that does the work instead"
        )
    if isinstance(func, (classmethod, staticmethod)) and not callable(func):
        raise TypeError(
            f"@{what} got a {type(func).__name__} object: put @{what} below "
            f"@{type(func).__name__} so it wraps the function itself"
        )
    if not callable(func):
        raise TypeError(
            f"@{what} decorates functions and methods, got {type(func).__name__} "
            f"{func!r:.80}; pass attributes as keyword arguments: {what}(name=value)"
        )


def _start(
    scope: CallScope[StateT],
    reader: ArgumentReader,
    site: str,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> StateT | None:
    # Inlined rather than calling _safe_begin: this runs on every decorated call.
    try:
        return scope._begin(reader.read(args, kwargs) if reader._slots else {}, site)
    except Exception as exc:
        report_internal_error(scope._component, exc)
        return None


def _wrap_sync(
    scope: CallScope[Any], func: Callable[P, R], reader: ArgumentReader, site: str
) -> Callable[P, R]:
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        state = _start(scope, reader, site, args, kwargs)
        if state is None:
            return func(*args, **kwargs)
        state._activate()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            state._deactivate()
            state._end(exc)
            raise
        state._deactivate()
        state._end(None, result)
        return result

    return wrapper


def _wrap_coroutine(
    scope: CallScope[Any],
    func: Callable[P, Awaitable[R]],
    reader: ArgumentReader,
    site: str,
) -> Callable[P, Awaitable[R]]:
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        state = _start(scope, reader, site, args, kwargs)
        if state is None:
            return await func(*args, **kwargs)
        state._activate()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            state._deactivate()
            state._end(exc)
            raise
        state._deactivate()
        state._end(None, result)
        return result

    return wrapper


def _wrap_generator(
    scope: CallScope[Any],
    func: Callable[P, Generator[Any, Any, Any]],
    reader: ArgumentReader,
    site: str,
) -> Callable[P, Generator[Any, Any, Any]]:
    # The span is current only while the generator body runs, never across a yield:
    # otherwise it would leak into the consumer's code between steps.
    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Generator[Any, Any, Any]:
        state = _start(scope, reader, site, args, kwargs)
        if state is None:
            return (yield from func(*args, **kwargs))
        gen = func(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            state._activate()
            try:
                value = gen.send(sent) if thrown is None else gen.throw(thrown)
            except StopIteration as stop:
                state._deactivate()
                state._end(None, stop.value)
                return stop.value
            except BaseException as exc:
                state._deactivate()
                state._end(exc)
                raise
            state._deactivate()
            thrown = None
            try:
                sent = yield value
            except GeneratorExit:
                # The consumer stopped early: close the body, end the span normally.
                state._activate()
                try:
                    gen.close()
                except BaseException as exc:
                    state._deactivate()
                    state._end(exc)
                    raise
                state._deactivate()
                state._end(None)
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper


def _wrap_async_generator(
    scope: CallScope[Any],
    func: Callable[P, AsyncGenerator[Any, Any]],
    reader: ArgumentReader,
    site: str,
) -> Callable[P, AsyncGenerator[Any, Any]]:
    @functools.wraps(func)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> AsyncGenerator[Any, Any]:
        state = _start(scope, reader, site, args, kwargs)
        agen = func(*args, **kwargs)
        if state is None:
            async for item in agen:
                yield item
            return
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            state._activate()
            try:
                if thrown is None:
                    value = await agen.asend(sent)
                else:
                    value = await agen.athrow(thrown)
            except StopAsyncIteration:
                state._deactivate()
                state._end(None)
                return
            except BaseException as exc:
                state._deactivate()
                state._end(exc)
                raise
            state._deactivate()
            thrown = None
            try:
                sent = yield value
            except GeneratorExit:
                state._activate()
                try:
                    await agen.aclose()
                except BaseException as exc:
                    state._deactivate()
                    state._end(exc)
                    raise
                state._deactivate()
                state._end(None)
                raise
            except BaseException as exc:
                thrown = exc

    return wrapper
