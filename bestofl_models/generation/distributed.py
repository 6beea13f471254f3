"""Data parallelism: who does which share of the work (pure functions), and the process group behind it.

Two kinds, one per backend (README "Scaling"):

* ``accelerate launch -m lm_eval ...`` (hf backend): lm-eval hands each rank its share of the docs; the harness
  gathers every rank's *missing candidates*, drops duplicates, and each rank generates and scores the share
  :func:`balanced_split` gives it, then the ranks exchange what they made (:class:`ProcessGroup`).
* ``data_parallel_size=K`` (vllm backend): one engine per replica; a batch is dealt out with
  :func:`split_interleaved` and put back in order with :func:`merge_in_order`.
"""

from __future__ import annotations

import atexit
import heapq
import logging
import os
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)
#: Where launchers put the number of processes (torchrun/accelerate; MPI for ``--mpirun_hostfile``).
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def balanced_split(costs: Sequence[float], parts: int) -> list[list[int]]:
    """Indices of ``costs`` per part, totals as even as the greedy rule makes them: the costliest item first, each
    to the part with the least so far (ties: the lower part, then the lower index). Each part's indices ascend.
    Deterministic, so every rank computes the same split from the same list."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    loads = [(0.0, part) for part in range(parts)]
    shares: list[list[int]] = [[] for _ in range(parts)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, part = heapq.heappop(loads)
        shares[part].append(index)
        heapq.heappush(loads, (load + costs[index], part))
    return [sorted(share) for share in shares]


def split_interleaved(count: int, parts: int) -> list[list[int]]:
    """Indices ``0..count-1`` dealt round-robin over ``parts`` (like lm-eval's vLLM data parallel): a batch sorted
    longest first gives every part a similar mix of lengths."""
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    return [list(range(part, count, parts)) for part in range(parts)]


def merge_in_order(indices: Sequence[Sequence[int]], results: Sequence[Sequence[T]]) -> list[T]:
    """Put per-part results back in the original order: ``results[p][j]`` belongs at ``indices[p][j]``."""
    merged: list[Any] = [None] * sum(len(share) for share in indices)
    placed = 0
    for share, outputs in zip(indices, results, strict=True):
        if len(share) != len(outputs):
            raise ValueError(f"a part returned {len(outputs)} results for {len(share)} items")
        for index, output in zip(share, outputs):
            merged[index] = output
            placed += 1
    if placed != len(merged) or len({i for share in indices for i in share}) != len(merged):
        raise ValueError("the parts' indices are not a split of 0..n-1")
    return merged


def _destroy_process_group() -> None:
    """Tear the process group down before the interpreter exits: a gloo group left to the C++ destructors aborts
    the process ("terminate called without an active exception"), and the launcher then kills the other ranks."""
    import torch.distributed

    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


class ProcessGroup:
    """This process's place among the data-parallel ranks of an ``accelerate launch`` (or ``torchrun``) run.

    Without a launcher it is rank 0 of 1 and every collective returns its input. ``rank`` is the global
    process index (lm-eval shards docs by it), ``device`` the rank's own device (``cuda:LOCAL_RANK``; the CPU,
    with gloo, on a machine without CUDA). The process group is set up by accelerate with lm-eval's timeout (a
    year), so ranks that wait while another still generates do not time out."""

    def __init__(self) -> None:
        self.accelerator = None
        self.rank, self.world_size, self.device = 0, 1, None
        if max(int(os.environ.get(name) or 1) for name in WORLD_SIZE_VARS) > 1:
            import torch
            from accelerate import Accelerator
            from accelerate.utils import InitProcessGroupKwargs

            accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                                      kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(weeks=52))])
            if accelerator.num_processes > 1:
                atexit.register(_destroy_process_group)
                self.accelerator = accelerator
                self.rank, self.world_size = accelerator.process_index, accelerator.num_processes
                self.device = accelerator.device
        elif os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true") and "MASTER_ADDR" in os.environ:
            logger.warning("accelerate launch --cpu started this one process only (it starts several only with "
                           "--mpirun_hostfile); for N processes on the CPU run `accelerate launch --multi_gpu "
                           "--num_processes N` (gloo, no GPU needed).")

    def all_gather(self, items: list[T]) -> list[T]:
        """Every rank's ``items`` (picklable), concatenated in rank order, on every rank."""
        if self.accelerator is None:
            return items
        from accelerate.utils import gather_object

        return gather_object(items)

    def all_gather_tensor(self, tensor):
        """lm-eval's ``LM.all_gather``: the ranks' tensors concatenated (it counts requests per rank with it)."""
        return tensor if self.accelerator is None else self.accelerator.gather(tensor)

    def gather_to(self, obj: Any, dst: int = 0) -> list | None:
        """lm-eval's ``LM.gather_object``: every rank's ``obj`` on ``dst`` (a list), None elsewhere."""
        if self.accelerator is None:
            return [obj]
        import torch.distributed

        result = [None] * self.world_size if self.rank == dst else None
        torch.distributed.gather_object(obj=obj, object_gather_list=result, dst=dst)
        return result

    def barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()
