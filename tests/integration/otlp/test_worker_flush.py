"""Workers of ``multiprocessing`` pools started by spawn or forkserver, and joblib's loky
workers, export what they recorded before they exit, without flushing by themselves.

A worker configures telemetry (a pool initializer, or its first task), records a trade
per task and returns; its spans must reach a real OTLP receiver through the rotel
collector once the pool has been closed and joined. Such workers leave through
``os._exit`` (forkserver) or are never shut down by ``atexit`` in time: only
``multiprocessing``'s own exit finalizers run for certain.
"""

from __future__ import annotations

import multiprocessing

import pytest

from tests.integration.otlp import pool_worker
from tests.otlp_receiver import OtlpReceiver, RotelCollector

pytestmark = pytest.mark.integration

TASKS = 6


@pytest.mark.parametrize("method", [
    m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()])
@pytest.mark.parametrize("max_tasks", [None, 1])
def test_a_pool_worker_that_configured_telemetry_exports_before_exiting(
    rotel: RotelCollector, otlp_receiver: OtlpReceiver, method: str, max_tasks: int | None,
) -> None:
    context = multiprocessing.get_context(method)
    symbols = [f"{method.upper()}{max_tasks}X{i}" for i in range(TASKS)]
    pool = context.Pool(2, initializer=pool_worker.configure,
                        initargs=(rotel.http_endpoint,), maxtasksperchild=max_tasks)
    try:
        pids = pool.map(pool_worker.record, symbols)
    finally:
        pool.close()
        pool.join()
    assert len(set(pids)) >= 1
    wanted = {f"trade {symbol}" for symbol in symbols}
    otlp_receiver.wait_for(lambda r: wanted <= set(r.span_names()), timeout=30)


def test_joblib_loky_workers_export_before_exiting(
    rotel: RotelCollector, otlp_receiver: OtlpReceiver,
) -> None:
    joblib = pytest.importorskip("joblib")
    from joblib.externals.loky import get_reusable_executor

    symbols = [f"LOKY{i}" for i in range(TASKS)]
    joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(pool_worker.configure_and_record)(rotel.http_endpoint, symbol)
        for symbol in symbols)
    get_reusable_executor().shutdown(wait=True)  # the workers exit now
    wanted = {f"trade {symbol}" for symbol in symbols}
    otlp_receiver.wait_for(lambda r: wanted <= set(r.span_names()), timeout=30)
