"""Where trials run: joblib's loky processes on this machine, or a dask.distributed cluster.

Both stream results back as they finish (``return_as="generator_unordered"``), so
the driver writes the rows of each unit of work as soon as it returns, whatever the backend.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lossbench.errors import UserError

BACKENDS = ("loky", "dask")


@dataclass(frozen=True)
class BackendConfig:
    name: str = "loky"
    n_jobs: int = 1
    scheduler: str | None = None  # dask: tcp://host:8786 of an existing cluster; None starts a LocalCluster
    retries: int = 0  # dask: resubmit a trial whose worker died
    threads: int = 1  # BLAS/torch threads per worker
    gpu: bool = False  # dask: each trial asks for resources={"GPU": 1}, so a worker runs one per GPU it declares

    def validate(self) -> BackendConfig:
        if self.name not in BACKENDS:
            raise UserError(f"Unknown --backend {self.name!r}.", f"Use one of {', '.join(BACKENDS)}.")
        if self.scheduler and self.name != "dask":
            raise UserError("--scheduler only applies to --backend dask.", "Add --backend dask.")
        if self.retries < 0:
            raise UserError(f"--retries must not be negative; got {self.retries}.")
        return self


@contextlib.contextmanager
def parallel_backend(config: BackendConfig) -> Iterator[dict[str, Any]]:
    """Activate the backend for joblib; yields the ``Parallel`` keyword arguments to use."""
    from joblib import parallel_config

    if config.name == "loky":
        # One BLAS/torch thread per worker: small models are faster per-trial-parallel than per-op-parallel.
        with parallel_config(backend="loky", n_jobs=config.n_jobs, inner_max_num_threads=config.threads):
            yield {}
        return
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UserError("--backend dask needs dask.distributed.", "pip install 'lossbench[dask]'") from None
    cluster = None
    try:
        if config.scheduler:
            client = Client(config.scheduler, timeout="10s")
        else:
            # A GPU run: each local worker declares one GPU and pins itself to device (its index mod the count).
            extra: dict[str, Any] = {"resources": {"GPU": 1}} if config.gpu else {}
            import dask

            # worker-saturation 1: a worker holds only the trial it runs, so when it dies no queued trial dies with it
            with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                cluster = LocalCluster(n_workers=config.n_jobs, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR,
                                       **extra)
            client = Client(cluster)
            if config.gpu:
                client.register_plugin(pin_gpu_plugin())
    except (OSError, TimeoutError) as exc:
        raise UserError(f"Cannot reach the dask scheduler {config.scheduler!r} ({exc}).",
                        "Check the address, or drop --scheduler to start a local cluster.") from None
    submit: dict[str, Any] = {"retries": config.retries} if config.retries else {}
    if config.gpu:
        # Workers without a GPU resource never get these tasks: start remote ones with `--resources GPU=1`.
        submit["resources"] = {"GPU": 1}
    try:
        register_dask_backend()
        with parallel_config(backend=DASK_BACKEND, n_jobs=-1, client=client, **submit):
            yield {}
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


DASK_BACKEND = "lossbench-dask"


def register_dask_backend() -> None:
    """joblib's dask backend, except that a task dask gave up on fails the ``Parallel`` call instead of hanging it.

    joblib 1.6 sets the exception of a failed dask future (``KilledWorker`` after a worker died, a
    cancelled task) but never calls the job's completion callback, which ``Parallel`` waits for: the
    call hangs for ever. Here the callback receives the exception, so ``Parallel`` raises it and the
    runner records the trials in question.
    """
    import asyncio

    from joblib import register_parallel_backend
    from joblib._dask import DaskDistributedBackend

    class DaskBackend(DaskDistributedBackend):  # type: ignore[misc]
        async def _collect(self) -> None:
            while self._continue:
                async for future, result in self.waiting_futures:
                    cf_future = self._results.pop(future)
                    callback = self._callbacks.pop(future)
                    if future.status == "error":
                        _typ, exc, _tb = result
                        cf_future.set_exception(exc)
                        callback(exc)  # the joblib callback re-raises it as this job's outcome
                    else:
                        cf_future.set_result(result)
                        callback(result)
                await asyncio.sleep(0.01)

        def __reduce__(self) -> tuple[Any, ...]:
            return (DaskBackend, ())

    register_parallel_backend(DASK_BACKEND, DaskBackend)


def pin_gpu_plugin() -> Any:
    """A dask worker plugin: a local worker named ``i`` uses CUDA device ``i mod device_count``.

    LocalCluster workers all see every GPU; without pinning they would all share device 0.
    Workers started by hand (docs/distributed.md) get one GPU each from CUDA_VISIBLE_DEVICES instead.
    Defined on demand: importing dask.distributed costs every worker process a quarter of a second.
    """
    from distributed.diagnostics.plugin import WorkerPlugin

    class PinGPU(WorkerPlugin):  # type: ignore[misc]
        name = "lossbench-pin-gpu"

        def setup(self, worker: Any) -> None:
            import torch

            if torch.cuda.is_available() and str(worker.name).isdigit():
                torch.cuda.set_device(int(worker.name) % torch.cuda.device_count())

    return PinGPU()
