"""Where tasks run: in this process, in local worker processes, or on a Dask cluster.

All three offer the same three calls (``submit``, ``wait_any``, ``close``) so the runner does not
care which one it drives. Workers only compute; the runner writes every result.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
from typing import Any, Callable, Iterable, Optional


class SerialExecutor:
    """Runs each task in this process as it is submitted (debugging, profiling, tiny studies)."""

    name = "serial"
    workers = 1

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Run now; return a finished future holding the result or the exception."""
        future: cf.Future = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # the runner decides what a failed task means
            future.set_exception(exc)
        return future

    def share(self, value: Any) -> Any:
        """Nothing to ship: the value is already here."""
        return value

    def wait_any(self, futures: Iterable[Any]) -> tuple[set, set]:
        """All submitted futures are already done."""
        return cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)

    def close(self, cancel: bool = False) -> None:
        """Nothing to release."""

    def describe(self) -> dict[str, Any]:
        """How the tasks run, for the run log."""
        return {"executor": self.name, "workers": self.workers}


class LocalExecutor:
    """A pool of ``workers`` local processes, started with ``spawn`` (safe with torch and threads)."""

    name = "local"

    def __init__(self, workers: Optional[int] = None):
        workers = workers if workers is not None else (os.cpu_count() or 1)
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r} is not accepted: expected a number of processes >= 1")
        self.workers = workers
        # One BLAS/OpenMP thread per worker: inherited by the spawned children before they import numpy.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")
        self._pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, fn: Callable[..., Any], *args: Any) -> cf.Future:
        """Queue a task on the pool."""
        return self._pool.submit(fn, *args)

    def share(self, value: Any) -> Any:
        """Values travel with each task (pickled per submission; the setup is a few kilobytes)."""
        return value

    def wait_any(self, futures: Iterable[Any]) -> tuple[set, set]:
        """Block until at least one future finishes."""
        return cf.wait(list(futures), return_when=cf.FIRST_COMPLETED)

    def close(self, cancel: bool = False) -> None:
        """Shut the pool down; with ``cancel``, drop queued tasks and stop the running ones now."""
        if cancel:
            # A cancelled run discards what the workers compute: stop them instead of letting them finish.
            for process in list(getattr(self._pool, "_processes", {}).values()):
                process.terminate()
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)

    def describe(self) -> dict[str, Any]:
        """How the tasks run, for the run log."""
        return {"executor": self.name, "workers": self.workers}


class DaskExecutor:
    """Tasks on a Dask cluster: an existing scheduler (``address``), a given client, or a LocalCluster."""

    name = "dask"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None, client: Any = None):
        try:
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise ValueError("the Dask executor needs the 'distributed' package: pip install 'dask[distributed]'") from exc
        self._cluster = None
        self._own_client = client is None
        if client is not None:
            self.client = client
        elif address is not None:
            try:
                self.client = Client(address, timeout="20s")
            except OSError as exc:
                raise ValueError(f"cannot reach the Dask scheduler at {address!r}: {exc}") from exc
        else:
            workers = workers if workers is not None else (os.cpu_count() or 1)
            if not isinstance(workers, int) or workers < 1:
                raise ValueError(f"dask workers={workers!r} is not accepted: expected a number >= 1")
            # Processes, one thread each: the tasks hold the GIL in NumPy/torch between calls.
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                         dashboard_address=None, silence_logs=40)
            self.client = Client(self._cluster)
        self.address = address

    @property
    def workers(self) -> int:
        """Workers currently connected to the scheduler."""
        return len(self.client.nthreads())

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Send a task to the cluster (``pure=False``: every submission runs)."""
        return self.client.submit(fn, *args, pure=False)

    def share(self, value: Any) -> Any:
        """Ship a value to every worker once; tasks then refer to it."""
        return self.client.scatter(value, broadcast=True)

    def wait_any(self, futures: Iterable[Any]) -> tuple[set, set]:
        """Block until at least one future finishes."""
        from distributed import wait

        done, pending = wait(list(futures), return_when="FIRST_COMPLETED")
        return set(done), set(pending)

    def close(self, cancel: bool = False) -> None:
        """Close the client, and the local cluster when this executor started it."""
        if self._own_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    def describe(self) -> dict[str, Any]:
        """How the tasks run, for the run log."""
        return {"executor": self.name, "workers": self.workers, "scheduler": self.address or "local cluster"}


def executor_factory(workers: Optional[int] = None, scheduler: Optional[str] = None,
                     dask_workers: Optional[int] = None) -> Callable[[], Any]:
    """Check the CLI's executor options now; return what builds that executor when a run needs it.

    ``workers``: ``None`` one local process per core, ``0`` every task in this process (no workers),
    ``N >= 1`` that many local processes. ``dask_workers`` starts a local Dask cluster of N >= 1.
    Building is deferred so that a run that finds its folder busy, or nothing left to do, starts
    no processes and no cluster.
    """
    chosen = [name for name, v in (("--workers", workers), ("--scheduler", scheduler), ("--dask-workers", dask_workers))
              if v is not None]
    if len(chosen) > 1:
        raise ValueError(f"choose one of --workers, --scheduler and --dask-workers (got {' and '.join(chosen)})")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"--workers {workers!r} is not accepted: expected 0 (run the tasks in this process) or a "
                         "number of worker processes >= 1; leave it out for one per core")
    if dask_workers is not None and (isinstance(dask_workers, bool) or not isinstance(dask_workers, int)
                                     or dask_workers < 1):
        raise ValueError(f"--dask-workers {dask_workers!r} is not accepted: expected a number of Dask worker "
                         "processes >= 1 (or --workers 0 to run the tasks in this process)")
    if scheduler is not None:
        return lambda: DaskExecutor(address=scheduler)
    if dask_workers is not None:
        return lambda: DaskExecutor(workers=dask_workers)
    if workers == 0:
        return lambda: SerialExecutor()
    return lambda: LocalExecutor(workers)


def make_executor(workers: Optional[int] = None, scheduler: Optional[str] = None,
                  dask_workers: Optional[int] = None) -> Any:
    """The executor the CLI options ask for (at most one of them); local processes by default."""
    return executor_factory(workers, scheduler, dask_workers)()
