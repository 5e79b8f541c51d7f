"""Fork safety: a child forked while other threads record keeps recording and exporting.

``os.fork()`` copies the process with only the calling thread. Every lock another
thread held at that instant stays held forever in the child, and every thread (the
OTLP sender, the metric pusher, the InfluxDB writer) is simply gone. One
``os.register_at_fork(after_in_child=...)`` hook, registered when this module is first
imported (before any OpenTelemetry provider exists, so it runs before the SDK's own
hooks), repairs the child:

- locks of otel_botmon's modules and of registered objects are replaced by new ones;
- the OpenTelemetry SDK's metric storage locks (measurement consumer, reader storages,
  view-instrument matches, every aggregation) are replaced, which the SDK does not do;
- the unfinished tasks of event loops that ran on the parent's other threads are kept
  alive, so their coroutines are never closed in the child (their ``finally`` blocks
  belong to the parent);
- objects registered with :func:`register` run their ``_after_fork_in_child()``: the
  exporters drop the parent's queued batches and HTTP connections and start new threads.

Objects are held weakly. Nothing here runs in the parent.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any, Final, Protocol

__all__ = [
    "ForkAware", "abandon", "child_resource", "flush_when_this_worker_exits",
    "flush_when_worker_exits", "loop_survived", "register", "renew_locks",
    "reset_connections",
]

logger = logging.getLogger("otel_botmon")

_LOCK: Final = type(threading.Lock())
_RLOCK: Final = type(threading.RLock())


class ForkAware(Protocol):
    def _after_fork_in_child(self) -> None: ...


_registered: list[weakref.ref[Any]] = []
_registered_lock = threading.Lock()


def register(obj: ForkAware) -> None:
    """Call ``obj._after_fork_in_child()`` in every child forked from now on (weakly)."""
    with _registered_lock:
        _registered[:] = [ref for ref in _registered if ref() is not None]
        _registered.append(weakref.ref(obj))


def abandon(*objs: object) -> None:
    """Keep ``objs`` (the parent's SQLite connections, or its event loop's tasks) alive
    for the rest of this process, so that nothing ever runs SQLite on them, not even
    their close (nor a task's ``finally`` blocks, which closing a coroutine runs).

    SQLite forbids carrying a connection across ``fork()``. Closing one in the child is
    not harmless either: it takes the connection's mutex (held forever when a thread of
    the parent was inside SQLite at the fork), rolls back the parent's open
    transaction, and, once the parent has closed the file, may checkpoint it and delete
    its write-ahead log. ``sqlite3.Connection`` closes itself when freed, which includes
    the interpreter's own clean-up at exit: each object gets one reference that is never
    given back (a few hundred bytes per forked store)."""
    import ctypes

    for obj in objs:
        if obj is not None:
            ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))


def loop_survived(thread_ident: int | None) -> bool:
    """Whether the event loop that ran on ``thread_ident`` (in the parent) still runs
    in this child: only the thread that called ``fork()`` survives it."""
    return thread_ident is not None and thread_ident == threading.get_ident()


def _fresh(value: object) -> object | None:
    """A new, released primitive standing in for ``value``, or None if it is none."""
    if isinstance(value, _LOCK):
        return threading.Lock()
    if isinstance(value, _RLOCK):
        return threading.RLock()
    if isinstance(value, threading.Condition):
        return threading.Condition()
    if isinstance(value, threading.Event):
        event = threading.Event()
        if value.is_set():
            event.set()
        return event
    return None


def renew_locks(obj: object) -> None:
    """Replace every lock, condition and event among ``obj``'s attributes."""
    fields = getattr(obj, "__dict__", None)
    if fields is None:
        return
    for name, value in list(fields.items()):
        fresh = _fresh(value)
        if fresh is not None:
            fields[name] = fresh


def _renew_module_locks() -> None:
    for name, module in list(sys.modules.items()):
        if name == "otel_botmon" or name.startswith("otel_botmon."):
            renew_locks(module)
    resources = sys.modules.get("opentelemetry.sdk.resources")
    if resources is not None:  # the SDK's own at-fork hooks take this one
        renew_locks(resources)


def renew_metric_sdk_locks(meter_provider: object, *, forget_points: bool) -> None:
    """Replace the locks of the SDK's metric storage under ``meter_provider``.

    With ``forget_points`` every series starts again from nothing: the child is a new
    ``service.instance.id`` (the SDK renews it after a fork), and carrying the parent's
    cumulative sums over would count them twice.
    """
    renew_locks(meter_provider)
    for meter in list(getattr(meter_provider, "_meters", {}).values()):
        renew_locks(meter)
    consumer = getattr(meter_provider, "_measurement_consumer", None)
    renew_locks(consumer)
    for reader, storage in list(getattr(consumer, "_reader_storages", {}).items()):
        renew_locks(reader)
        renew_locks(storage)
        for matches in list(getattr(storage, "_instrument_view_instrument_matches", {}).values()):
            for match in matches:
                renew_locks(match)
                points = getattr(match, "_attributes_aggregation", None)
                if not isinstance(points, dict):
                    continue
                if forget_points:
                    points.clear()
                for aggregation in points.values():
                    renew_locks(aggregation)
                    for value in vars(aggregation).values():  # exemplar reservoirs
                        if type(value).__module__.startswith("opentelemetry.sdk.metrics"):
                            renew_locks(value)


def reset_connections(root: object, depth: int = 6) -> None:
    """Drop the HTTP connections pooled under ``root`` (the parent's sockets, which a
    child must never write to: two processes on one keep-alive connection read each
    other's answers): a ``requests.Session``'s adapters and any ``urllib3.PoolManager``.
    Locks and events met on the way are renewed too (an exporter's retry event).
    Closing a socket in the child releases its copy only; the parent's is untouched."""
    requests = sys.modules.get("requests")
    urllib3 = sys.modules.get("urllib3")
    seen: set[int] = set()
    level = [root]
    for _ in range(depth):
        following: list[object] = []
        for obj in level:
            if id(obj) in seen:
                continue
            seen.add(id(obj))
            if requests is not None and isinstance(obj, requests.Session):
                for adapter in obj.adapters.values():
                    for manager in (getattr(adapter, "poolmanager", None),
                                    *getattr(adapter, "proxy_manager", {}).values()):
                        _unlock_pools(manager)
                    adapter.close()
                continue
            if urllib3 is not None and isinstance(obj, urllib3.PoolManager):
                _unlock_pools(obj)
                obj.clear()
                continue
            if isinstance(obj, queue.Queue):
                _renew_queue(obj)
                continue
            fields = getattr(obj, "__dict__", None)
            if isinstance(fields, dict):
                renew_locks(obj)
                # Not into the primitives themselves (renewed whole just above): a
                # Condition's methods are bound to its lock, and a new lock under them
                # broke it (an Event's set() raised "cannot notify on un-acquired lock").
                following += [v for v in fields.values() if hasattr(v, "__dict__")
                              and not isinstance(v, type)
                              and type(v).__module__ not in ("builtins", "threading")]
            elif isinstance(obj, (list, tuple)):
                following += list(obj)
        level = following


def child_resource(resource: Any) -> Any:
    """``resource`` as it describes this (forked) process: a new ``service.instance.id``.

    The SDK's providers renew their own resources after a fork, but only in their own
    at-fork hooks, which run after ours, and only their own copies: a resource kept
    elsewhere still names the parent, whose series the child's would then overwrite at
    the backend. The same value the SDK detects (one per process id)."""
    from opentelemetry.sdk import resources

    # The SDK's own helper runs the detectors on a thread pool, whose module lock is
    # still held here (its at-fork hook runs after ours): run them on this thread.
    build = getattr(resources, "_build_resource_detectors", None)
    detectors = [d for d in build() if d.is_process_dependent()] if build is not None else [
        resources.ServiceInstanceIdResourceDetector()]
    fresh = resources.Resource.get_empty()
    for detector in detectors:
        try:
            fresh = fresh.merge(detector.detect())
        except Exception as exc:  # a broken detector must not stop the child
            logger.debug("otel_botmon: resource detector failed after fork: %s", exc)
    return resource.merge(fresh)


def _unlock_pools(manager: object) -> None:
    """Renew the locks a urllib3 ``PoolManager`` takes to close its pools: the parent's
    export thread takes them for every request (its pool map's lock, each pool's queue
    of idle connections), and closing under one it held at the fork waited forever."""
    pools = getattr(manager, "pools", None)
    renew_locks(pools)
    for pool in list(getattr(pools, "_container", {}).values()):
        idle = getattr(pool, "pool", None)
        if isinstance(idle, queue.Queue):
            _renew_queue(idle)


def _renew_queue(waiting: queue.Queue[Any]) -> None:
    """Three conditions over one mutex: renewed together, as ``Queue()`` makes them."""
    waiting.mutex = threading.Lock()
    waiting.not_empty = threading.Condition(waiting.mutex)
    waiting.not_full = threading.Condition(waiting.mutex)
    waiting.all_tasks_done = threading.Condition(waiting.mutex)


def flush_when_worker_exits(owner: object, flush: Callable[[], object]) -> None:
    """In a ``multiprocessing`` worker started by fork, run ``flush`` as it exits.

    Such a worker leaves through ``os._exit`` (no ``atexit``): what the batch processor
    still holds would be lost. ``multiprocessing`` empties its finalizers when the
    worker starts and then runs its after-fork callbacks, so the finalizer is
    registered from one of those. Call from an after-fork hook; no-op without
    ``multiprocessing``.
    """
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return

    def at_worker_start(target: object) -> None:
        util.Finalize(target, flush, exitpriority=10)

    util.register_after_fork(owner, at_worker_start)


def flush_when_this_worker_exits(owner: object, flush: Callable[[object], object]) -> bool:
    """In a ``multiprocessing`` worker of any start method (spawn, forkserver, fork,
    and joblib's loky workers), run ``flush(owner)`` as the worker exits, if ``owner``
    is still alive then; False (nothing done) outside a worker.

    A worker's last step is ``multiprocessing.util._exit_function()``, which runs the
    finalizers registered in the worker; after it a forkserver worker leaves through
    ``os._exit`` (no ``atexit``), and any worker may be ended before ``atexit`` runs.
    Call from inside the worker (the registry is emptied when a worker starts).
    ``owner`` is held weakly.
    """
    mp = sys.modules.get("multiprocessing")
    util = sys.modules.get("multiprocessing.util")
    if mp is None or util is None or mp.parent_process() is None:
        return False
    ref = weakref.ref(owner)

    def at_exit() -> None:
        alive = ref()
        if alive is not None:
            flush(alive)

    util.Finalize(None, at_exit, exitpriority=10)
    return True


_QUIESCE_S: Final = 1.0
"""How long a fork waits, at most, for the registered objects' locks (see _before_fork)."""
_held: list[Any] = []  # the locks the forking thread took in _before_fork


def _before_fork() -> None:
    """In the forking thread, just before ``fork()``: take the locks registered objects
    name in ``_fork_locks()`` (the alert store's, which every SQLite call of otel_botmon
    runs under), so that no other thread is inside SQLite at the fork. A thread inside
    SQLite at that instant may hold one of SQLite's own mutexes (its allocator's, its
    main one): the child inherits it held forever and hangs in its first SQLite call,
    in C, where no signal handler runs. The wait is bounded (``_QUIESCE_S`` in all): a
    lock held longer, as by a transaction kept open, does not stop the fork."""
    deadline = time.monotonic() + _QUIESCE_S
    for ref in list(_registered):
        obj = ref()
        names = getattr(obj, "_fork_locks", None)
        if names is None:
            continue
        try:
            locks = names()
        except Exception:  # never stop a fork
            continue
        for lock in locks:
            if lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                _held.append(lock)


def _release_held() -> None:
    while _held:
        lock = _held.pop()
        try:
            lock.release()
        except RuntimeError:  # not ours after all: nothing to give back
            pass


def _after_fork_in_parent() -> None:
    _release_held()


_kept_tasks: set[Any] = set()  # in a child: the parent's tasks of other threads' loops
_UNRECORDED: Final = object()


def _keep_other_threads_tasks() -> None:
    """In a child: keep every unfinished task of an event loop that ran on another
    thread of the parent alive for the rest of the process (see :func:`abandon`).

    Those threads do not exist here, so their loops never run again, and CPython keeps
    whatever their frames referenced. A task is only referenced by what it waits for,
    though: once an after-fork hook drops that (a handoff queue to a thread, as the
    notification dispatcher's settler had), the task is freed, its coroutine is
    closed, and its ``finally`` blocks and ``except BaseException`` handlers run here,
    on the child's state, at whatever moment the garbage collector chooses (with a
    "Task was destroyed but it is pending" error). A delivery in flight at the fork
    then left the child's dispatcher counting one in flight forever. Runs first, before
    any hook can drop a reference. The forking thread's own loop (a fork from inside a
    coroutine) goes on in the child: its tasks are left as they are."""
    tasks = sys.modules.get("asyncio.tasks")
    if tasks is None:
        return
    here = threading.get_ident()
    # asyncio's registries of tasks (3.11: _all_tasks; 3.12 and 3.13: _scheduled_tasks
    # and _eager_tasks). From 3.14 asyncio keeps its own tasks in per-thread lists these
    # do not hold: there only the components' own hooks keep theirs (the dispatcher's)
    for name in ("_all_tasks", "_scheduled_tasks", "_eager_tasks"):
        registry = getattr(tasks, name, None)
        if registry is None:
            continue
        try:
            found = list(registry)  # one thread here: nothing changes it meanwhile
        except Exception:  # never stop a fork
            continue
        for task in found:
            try:
                if not task.done() and _ran_elsewhere(task.get_loop(), here):
                    _kept_tasks.add(task)
            except Exception:  # pragma: no cover - a task of another implementation
                continue


def _ran_elsewhere(loop: Any, here: int) -> bool:
    """Whether ``loop`` was running on a thread of the parent other than ``here`` (the
    forking one). asyncio's loops record their thread; one that does not (uvloop) counts
    when it was running at all: its tasks are then kept even if it was the forking
    thread's own, which costs memory only (they still run, and end, in the child)."""
    owner = getattr(loop, "_thread_id", _UNRECORDED)
    if owner is _UNRECORDED:
        return bool(loop.is_running())
    return owner is not None and owner != here


def _after_fork_in_child() -> None:
    global _registered_lock
    _release_held()  # the forking thread took them: it is this child's only thread
    _keep_other_threads_tasks()
    _registered_lock = threading.Lock()
    _renew_module_locks()
    for ref in list(_registered):
        obj = ref()
        if obj is None:
            continue
        try:
            obj._after_fork_in_child()
        except Exception as exc:  # a child that cannot export must still run the bot
            from otel_botmon._internal import report_internal_error

            report_internal_error("fork", exc)


def _install(register_at_fork: Callable[..., None] | None) -> None:
    if register_at_fork is not None:
        register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                         after_in_child=_after_fork_in_child)


_install(getattr(os, "register_at_fork", None))
