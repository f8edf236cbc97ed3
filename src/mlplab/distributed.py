"""Data-parallel training on torch.distributed: N processes, one replica of the network each, and
DistributedDataParallel averaging the gradients of every batch.

Every rank draws the same seeded permutation of the training rows each epoch (the generator ``mlplab
train`` uses), so every rank knows the same global batches; rank r computes the loss of its slice of each
batch, scaled so that DDP's average of the ranks' gradients is exactly the gradient of the whole batch's
mean loss. The update is therefore the one a single process makes with the same ``batch_size``, to
float32 rounding, for any number of ranks. The train loss and accuracy of each batch are summed over the
ranks (one small all-reduce), evaluation runs on every rank with the same weights (so early stopping
decides alike everywhere), and rank 0 alone writes the run folder and prints.

From a Parquet file with at least as many row groups as ranks, each rank reads only its row groups
(:mod:`mlplab.sharded`): the splits and the preprocessing are still one process's, agreed with
collectives, and each rank batches its own rows (:meth:`DataParallel.shard_batches`), so with the whole
training set as the batch the weights are one process's, and with mini-batches they are another valid
shuffle's.

Two ways to start it::

    mlplab train --nproc 2 ...                                  # one machine: mlplab spawns the workers
    torchrun --nnodes 2 --nproc-per-node 2 --node-rank 0 \\
        --master-addr 10.0.0.1 --master-port 29500 -m mlplab train ...   # several machines

Under ``torchrun`` (``WORLD_SIZE`` is set) the process is one worker. gloo serves the CPU and nccl CUDA
GPUs (rank r uses GPU ``LOCAL_RANK``). A rank that dies makes the others stop: with ``--nproc`` the
launcher ends them at once; in any case every collective gives up after ``timeout`` seconds with a clear
error instead of waiting forever.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import tempfile
from pathlib import Path
from typing import Any

from .config import Config, MlplabError

__all__ = ["DataParallel", "distributed_env", "free_port", "read_parquet_shard", "train_distributed"]

DEFAULT_TIMEOUT = 300.0  # seconds a collective waits for a missing rank before the run stops


class DistributedError(MlplabError):
    """A worker of a distributed run failed, or lost contact with the others."""


def distributed_env() -> bool:
    """True in a worker started by torchrun (or any launcher that sets ``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def free_port() -> int:
    """A TCP port free on the loopback interface right now, for MASTER_PORT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def read_parquet_shard(path: str | Path, rank: int, world: int, columns: list[str] | None = None) -> dict[str, Any]:
    """This rank's share of a Parquet file: row groups ``rank, rank + world, ...``, read without the rest,
    so each rank's memory is about 1/world of the file's. Returns ``{column: NumPy array}`` as
    :func:`mlplab.readers.read_table` reads columns (text as ``str`` objects, ``NaN``/``None`` missing).

    Raises :class:`MlplabError` when the file has fewer row groups than ranks (a rank would get no rows)."""
    from .readers import parquet_layout, read_table

    groups = list(range(rank, len(parquet_layout(path)[1]), world))
    if not groups:
        raise MlplabError(f"{path} has {len(parquet_layout(path)[1])} row group(s), fewer than the {world} ranks; "
                          f"write it with more row groups (pyarrow: row_group_size)")
    return read_table(path, row_groups=groups, columns=columns)


# --- the step every rank runs --------------------------------------------------------------------------

class DataParallel:
    """The callback that makes ``fit`` data-parallel: at the start it wraps the model in
    DistributedDataParallel and gives ``fit`` the step below (the fast path never runs here). With a
    ``shard`` whose rows were read in shards (:mod:`mlplab.sharded`), it also gives ``fit`` the batches
    of this rank's rows."""

    reads_scores_every_epoch = False

    def __init__(self, rank: int, world: int, shard: Any = None):
        self.rank, self.world, self.shard = rank, world, shard
        self._batch_rows: Any = iter(())  # the global rows of each batch of this epoch (sharded reading)

    @property
    def sharded(self) -> bool:
        return self.shard is not None and self.shard.train_rows is not None

    def on_train_begin(self, state: Any) -> None:
        state.make_step = self.make_step
        if self.sharded:
            state.make_batches = self.shard_batches

    def on_epoch_end(self, state: Any) -> None: ...

    def on_train_end(self, state: Any) -> None: ...

    def shard_batches(self, x: Any, y: Any, weight: Any, batch_size: int | None, generator: Any):
        """One epoch's batches of this rank's rows. Every rank takes the same number of steps,
        ceil(all training rows / batch_size), cutting its own shuffle of its rows into that many nearly
        equal slices; the slices of one step make a global batch of about ``batch_size`` rows (all rows,
        exactly, when the batch is the whole set). Each rank's shuffle is seeded from one draw of the
        generator every rank shares, so the ranks stay in step and a resumed run continues exactly."""
        import torch

        counts = self.shard.train_rows
        total = sum(counts)
        steps = 1 if batch_size is None or batch_size >= total else -(-total // batch_size)
        self._batch_rows = iter([sum((k + 1) * c // steps - k * c // steps for c in counts) for k in range(steps)])
        if steps == 1:
            return [(x, y, weight)]
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed + self.rank)).to(x.device)
        xs, ys = x[order], y[order]
        bounds = [k * len(x) // steps for k in range(steps + 1)]
        return ((xs[bounds[k]:bounds[k + 1]], ys[bounds[k]:bounds[k + 1]], None) for k in range(steps))

    def make_step(self, model: Any, optimizer: Any, task: str, config: Any):
        import torch
        import torch.distributed as dist
        import torch.nn.functional as F
        from torch.nn.parallel import DistributedDataParallel

        from .training import count_correct, l1_norm

        device = next(model.parameters()).device
        replica = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
        rank, world, sharded = self.rank, self.world, self.sharded
        # fit divides the epoch's sums by this rank's row count: a shard's step scales the global sums by
        # (its rows / all rows) so that the record is the mean over all training rows
        share = self.shard.train_rows[rank] / sum(self.shard.train_rows) if sharded else 1.0

        def row_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if task == "binary":
                return F.binary_cross_entropy_with_logits(logits.squeeze(-1), y, reduction="none")
            if task == "multiclass":
                return F.cross_entropy(logits, y, reduction="none")
            return F.mse_loss(logits.squeeze(-1), y, reduction="none")

        def step(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None):
            n = len(y)
            if sharded:  # x is this rank's part of the global batch already
                low, high, total = 0, n, float(next(self._batch_rows))
            else:  # every rank holds the global batch: this rank's slice of it
                low, high = n * rank // world, n * (rank + 1) // world
                total = float(n) if w is None else w.sum()
            x, y = x[low:high], y[low:high]
            optimizer.zero_grad(set_to_none=True)
            logits = replica(x)
            losses = row_losses(logits, y)
            loss_sum = losses.sum() if w is None else (losses * w[low:high]).sum()
            # DDP averages the ranks' gradients: world * (local sum) / (batch total) averages to the
            # gradient of the whole batch's mean loss, whatever the slices' sizes.
            objective = loss_sum * (world / total)
            if config.l1 > 0:
                objective = objective + config.l1 * l1_norm(model)
            objective.backward()
            if config.clip_grad is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            optimizer.step()
            correct = count_correct(logits.detach(), y, task) if task != "regression" else 0
            sums = torch.stack([loss_sum.detach().double(), torch.as_tensor(correct, dtype=torch.float64,
                                                                             device=logits.device)])
            dist.all_reduce(sums)
            if sharded:
                return float(sums[0]) * share, float(sums[1]) * share
            return float(sums[0]), int(sums[1])

        return step


# --- starting the workers ------------------------------------------------------------------------------

def train_distributed(config: Config | None, *, nproc: int, out: str | Path | None = None, force: bool = False,
                      verbose: bool = False, resume: str | Path | None = None, epochs: int | None = None,
                      timeout: float = DEFAULT_TIMEOUT) -> Path | None:
    """Train (or with ``resume``, continue) a run on ``nproc`` processes of this machine, or, inside a
    torchrun worker, as that worker. Returns the run folder (on rank 0; None on the other ranks)."""
    if nproc < 1:
        raise MlplabError(f"--nproc must be >= 1, got {nproc}")
    if timeout <= 0:
        raise MlplabError(f"--timeout must be > 0 seconds, got {timeout:g}")
    spec = {"config": None if config is None else config.to_dict(), "out": None if out is None else str(out),
            "force": force, "verbose": verbose, "resume": None if resume is None else str(resume),
            "epochs": epochs, "timeout": timeout}
    if distributed_env():
        return _worker(int(os.environ.get("LOCAL_RANK", "0")), spec, None)
    if resume is None:
        from .run import _run_folder

        spec["out"] = str(_run_folder(out, config.validate(), force))  # checked once, before any worker starts
    import torch.multiprocessing as mp

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(nproc))
    with tempfile.TemporaryDirectory(prefix="mlplab-ddp-") as errors:
        try:
            mp.start_processes(_spawned, args=(spec, errors), nprocs=nproc, join=True, start_method="spawn")
        except mp.ProcessExitedException as error:
            raise DistributedError(_first_error(errors) or f"worker {error.error_index} died (exit code "
                                   f"{error.exit_code}); the other workers were stopped") from None
        except mp.ProcessRaisedException as error:
            raise DistributedError(_first_error(errors) or f"a worker failed: {str(error).strip().splitlines()[-1]}") \
                from None
        finally:
            for name in ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
                os.environ.pop(name, None)
    return Path(spec["out"]) if spec["out"] else Path(spec["resume"])


def _first_error(folder: str) -> str | None:
    messages = sorted(Path(folder).glob("rank-*.txt"))
    return messages[0].read_text().strip() if messages else None


def _spawned(local_rank: int, spec: dict[str, Any], errors: str) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank))
    try:
        _worker(local_rank, spec, errors)
    except MlplabError as error:
        Path(errors, f"rank-{local_rank:05d}.txt").write_text(str(error))
        os._exit(2)  # the launcher stops the other workers and reports this message


def _worker(local_rank: int, spec: dict[str, Any], errors: str | None) -> Path | None:
    import torch
    import torch.distributed as dist

    from .run import resume, train
    from .sharded import Shard, reading_shards

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    cuda = torch.cuda.is_available() and (spec["config"] or {}).get("training", {}).get("device") in ("auto", "cuda")
    if cuda:
        torch.cuda.set_device(local_rank)
    try:
        dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world,
                                timeout=dt.timedelta(seconds=spec["timeout"]))
    except (RuntimeError, ValueError) as error:
        raise DistributedError(f"rank {rank}: could not join the other workers within {spec['timeout']:g} s "
                               f"({str(error).splitlines()[0]})") from None
    lead = rank == 0
    try:
        # Rank 0 checks the run folder before anyone trains; every rank learns the verdict (under torchrun
        # no launcher checked it, and a refused rank 0 must not leave the others waiting).
        problem = None
        if lead and not spec["resume"]:
            from .run import _run_folder

            try:
                spec["out"] = str(_run_folder(spec["out"], Config.from_dict(spec["config"]).validate(),
                                              spec["force"]))
            except MlplabError as error:
                problem = str(error)
        verdict = torch.tensor([1.0 if problem else 0.0])
        dist.all_reduce(verdict)
        if float(verdict[0]):
            raise DistributedError(problem or f"rank {rank}: rank 0 refused the run; see its message")
        shard = Shard(rank, world)  # a Parquet file of >= world row groups: each rank reads its own
        callbacks = [DataParallel(rank, world, shard)]
        with reading_shards(shard):
            if spec["resume"]:
                run = resume(spec["resume"], epochs=spec["epochs"], verbose=spec["verbose"] and lead,
                             callbacks=callbacks, save=lead)
            else:
                config = Config.from_dict(spec["config"])
                run = train(config, out=spec["out"], save=lead, force=spec["force"] or not lead,
                            verbose=spec["verbose"] and lead, callbacks=callbacks)
        dist.barrier()  # nobody leaves before rank 0 has written the run folder
        return run.path if lead else None
    except RuntimeError as error:  # a collective failed: another rank died or timed out
        raise DistributedError(f"rank {rank}: lost contact with the other workers (one stopped or died; "
                               f"timeout {spec['timeout']:g} s): {str(error).splitlines()[0]}") from None
    finally:
        dist.destroy_process_group()
