"""One run on N processes (torchrun): the process group, the batch split, and agreement between ranks.

``torchrun --nproc_per_node N -m workbench train EXP.toml`` starts N copies of the trainer with
RANK, WORLD_SIZE and LOCAL_RANK in their environment; ``Group.from_env`` joins them (NCCL on CUDA,
each rank on cuda:LOCAL_RANK; gloo on the CPU). Without those variables (the window, a plain
``workbench train``) the group is one process and every method here is a no-op.

The rules that keep N processes equal to one:
- ``training.batch_size`` is the global batch of a micro-step. Every rank draws the whole batch from
  the one seeded batch generator, exactly as one process would, and trains on its rows
  ``r*B/N .. (r+1)*B/N`` (``shard``). Each rank's loss is the mean over its slice; the ranks' gradients
  are averaged, so the update is the one-process update on the global batch, and a checkpoint holds
  one generator's state whatever N was.
- Gradients are averaged by DistributedDataParallel in single-task runs (``Replicas``: it overlaps the
  all-reduce with the backward pass). Multi-task runs backpropagate one task at a time and need each
  task's *global* gradient (PCGrad, GradNorm, the conflict matrix): they run on the plain module and
  all-reduce the gradients and the per-task gradients together, in one call, before combining them.
- Once a step, one small all-reduce (``agree``) carries the step's losses (logged as means over the
  ranks) and a stop flag: a Ctrl-C or SIGTERM on any rank stops every rank at the same step. NaN and
  divergence checks read these all-reduced numbers and the averaged gradients, so every rank reaches
  the same decision at the same step without a further message.
- Rank 0 alone writes the run folder. A rank that dies makes a collective fail on the others (at once
  when its sockets close, after ``training.dist_timeout`` seconds when it hangs): they stop with a
  message naming the rank that did not answer (``lost_rank_message``).
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import time

import torch
import torch.distributed as dist
from torch import nn

from .errors import ConfigError, TrainingError


def launched() -> bool:
    """True in a process started by torchrun (or anything that sets WORLD_SIZE > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


class Group:
    """This process's place among the ranks of one run."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0):
        self.rank, self.world, self.local_rank = rank, world, local_rank
        self.stop_seen = False  # a rank asked to stop (agreed at the last step)
        self.pause_seen = False  # rank 0 was asked to pause (agreed at the last step)
        self._pauses = 0
        self._store = None

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def writes(self) -> bool:
        """Rank 0 writes the run folder; the others write nothing."""
        return self.rank == 0

    @classmethod
    def from_env(cls, device: torch.device, timeout_s: int) -> "Group":
        """Join the process group torchrun describes in the environment (one process: no group)."""
        if not launched():
            return cls()
        world = int(os.environ["WORLD_SIZE"])
        local = int(os.environ.get("LOCAL_RANK", "0"))
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_available() or (backend == "gloo" and not dist.is_gloo_available()):
            raise ConfigError(f"This PyTorch build ({torch.__version__}) has no {backend} backend for "
                              f"training on {world} processes; run one process (no torchrun).")
        if not dist.is_initialized():
            dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s),
                                    **({"device_id": device} if device.type == "cuda" else {}))
        group = cls(dist.get_rank(), dist.get_world_size(), local)
        group._store = _default_store()
        return group

    def describe(self, device: torch.device, batch_size: int) -> str:
        return (f"{self.world} processes ({'nccl' if device.type == 'cuda' else 'gloo'}), "
                f"{batch_size // self.world} rows of each batch per process")

    def device(self, device: torch.device) -> torch.device:
        """Each rank on its own GPU: cuda:LOCAL_RANK (CPU ranks share the CPU)."""
        return torch.device("cuda", self.local_rank) if self.active and device.type == "cuda" else device

    def finished(self, wait_s: float = 6 * 3600) -> None:
        """At the end of a run every rank reached: the others wait until rank 0 has written its last
        files, so no rank tears its process group down while another still uses its own (a rank that
        left early was seen to abort in gloo's teardown). The store, not a collective: rank 0's final
        checkpoint may take longer than the collectives' timeout."""
        if not self.active:
            return
        if self.rank == 0:
            self._store.set("workbench/finished", "1")
        else:
            self._store.wait(["workbench/finished"], datetime.timedelta(seconds=wait_s))

    def close(self) -> None:
        self._store = None  # the client goes before the group, not at interpreter exit
        if self.active and dist.is_initialized():
            dist.destroy_process_group()

    def own_dropout(self, seed: int, step: int) -> None:
        """Ranks > 0 draw their own dropout masks from here on: with the run's one seed every rank's rows
        would get the same masks. Rank 0 keeps the run's stream (the one its checkpoints store)."""
        if self.rank > 0:
            torch.manual_seed((seed + 7919 * self.rank + 104_729 * step) % 2**63)

    # -- the batch ---------------------------------------------------------------------------

    def check_batch(self, batch_size: int) -> None:
        if self.active and batch_size % self.world:
            raise ConfigError(
                f"training.batch_size = {batch_size} is the global batch, split evenly over the {self.world} "
                f"processes; {batch_size} is not divisible by {self.world}. Use a multiple of {self.world} "
                f"(e.g. {batch_size - batch_size % self.world or self.world}), or another number of processes.")

    def shard(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """This rank's rows of a global batch (every tensor's first dimension is the batch)."""
        if not self.active:
            return batch
        out = {}
        for k, v in batch.items():
            per = v.size(0) // self.world
            out[k] = v[self.rank * per:(self.rank + 1) * per]
        return out

    # -- agreement between ranks -------------------------------------------------------------

    def agree(self, values: torch.Tensor, stop: bool, pause: bool = False) -> tuple[list[float], bool]:
        """One all-reduce per step: the mean of ``values`` over the ranks, and whether any rank asked to
        stop. The answer's stop and pause flags are remembered (``stop_seen``, ``pause_seen``) for the
        next step boundary, where every rank acts on them together."""
        if not self.active:
            return values.float().tolist(), stop
        flags = torch.tensor([1.0 if stop else 0.0, 1.0 if pause else 0.0], device=values.device)
        packed = torch.cat([values.detach().float().reshape(-1), flags])
        dist.all_reduce(packed)
        out = (packed[:-2] / self.world).tolist()
        self.stop_seen = self.stop_seen or packed[-2].item() > 0
        self.pause_seen = packed[-1].item() > 0
        return out, self.stop_seen

    def should_stop(self, local: bool) -> bool:
        """At a step boundary: stop now? One process: its own request; N: the request every rank saw."""
        return self.stop_seen if self.active else local

    def pause_together(self, wait_on_rank0, wait_s: float = 7 * 24 * 3600) -> bool:
        """Every rank waits at the same step boundary while rank 0 is paused; True when the pause ended
        in a stop. Rank 0 runs ``wait_on_rank0()`` (it waits on its control file and returns whether a
        stop was asked); the others wait on the rendezvous store, not a collective, because a pause may
        last longer than the collectives' timeout. One process just waits."""
        if not self.active:
            return bool(wait_on_rank0())
        key = f"workbench/pause/{self._pauses}"
        self._pauses += 1
        self.pause_seen = False
        if self.rank == 0:
            stop = bool(wait_on_rank0())
            self._store.set(key, "stop" if stop else "resume")
        else:
            self._store.wait([key], datetime.timedelta(seconds=wait_s))
            stop = self._store.get(key) == b"stop"
        self.stop_seen = self.stop_seen or stop
        return stop

    def from_rank0(self, values: list[float], device: torch.device) -> list[float]:
        """Rank 0's numbers on every rank (validation results: every rank takes the same decision)."""
        if not self.active or not values:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=device)
        dist.broadcast(t, 0)
        return t.tolist()

    def path_from_rank0(self, path: str | None) -> str:
        """The run folder rank 0 made (the others name it in messages; they never write to it)."""
        if not self.active:
            return path or ""
        box = [path]
        dist.broadcast_object_list(box, 0)
        return box[0]

    def after_rank0(self, key: str, work, wait_s: float = 6 * 3600):
        """Run ``work()`` on rank 0 first, then on the others (rank 0 fills the token cache and the
        others read it; no rank but 0 creates a file). Waits on the rendezvous store, not a collective:
        encoding a large corpus may take longer than the collectives' timeout."""
        if not self.active:
            return work()
        flag = f"workbench/{key}"
        if self.rank == 0:
            try:
                result = work()
            except BaseException:
                self._store.set(flag, "failed")
                raise
            self._store.set(flag, "ok")
            return result
        self._store.wait([flag], datetime.timedelta(seconds=wait_s))
        if self._store.get(flag) != b"ok":
            raise TrainingError(f"rank 0 failed while preparing ({key}); its output says why.")
        return work()

    def mean_grads_(self, params: list[nn.Parameter], extra: torch.Tensor | None = None) -> None:
        """Average the gradients (and ``extra``, e.g. the per-task gradients) over the ranks, in one
        all-reduce. Every rank has gradients on the same parameters (they draw the same tasks)."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        parts = [g.reshape(-1) for g in grads] + ([extra.reshape(-1)] if extra is not None else [])
        if not parts:
            return
        flat = torch.cat(parts)
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
        if extra is not None:
            extra.copy_(flat[offset:].view_as(extra))

    # -- failures ----------------------------------------------------------------------------

    def lost_rank_message(self, error: BaseException, step: int, wait_s: float = 5.0) -> str | None:
        """A collective that failed because another rank died or hung: which rank(s) did not answer.
        The survivors sign in on the rendezvous store; whoever has not signed in after ``wait_s`` is
        named. None when this was no distributed failure."""
        if not self.active or not _is_collective_error(error):
            return None
        first = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        try:
            self._store.set(f"workbench/alive/{self.rank}", str(os.getpid()))
            deadline = time.monotonic() + wait_s
            while True:
                missing = [r for r in range(self.world)
                           if not self._store.check([f"workbench/alive/{r}"])]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        except Exception:  # the store lived in rank 0's process (no torchrun agent): rank 0 is gone
            missing = [0]
        if not missing:
            who = "another rank failed"
        else:
            names = ", ".join(map(str, missing))
            who = f"rank {names} of {self.world} stopped answering (it exited, was killed, or hangs)"
        return (f"Training stopped at step {step} on rank {self.rank}: {who}; its own output says why "
                f"({first}). Resume from the last checkpoint with `workbench train --resume RUN_DIR`.")


def _default_store():
    """The rendezvous store of the process group (torchrun's agent holds it: it outlives any rank)."""
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


def _is_collective_error(e: BaseException) -> bool:
    if isinstance(e, getattr(dist, "DistError", ())):
        return True
    text = str(e)
    return isinstance(e, RuntimeError) and any(s in text for s in (
        "Connection closed by peer", "Connection reset", "Timed out", "timed out", "gloo", "NCCL",
        "Broken pipe", "ProcessGroup"))


class _TaskForward(nn.Module):
    """What DDP wraps: the whole net (trunk, heads, balance), forwarding one task's batch."""

    def __init__(self, net: nn.Module, tasks: list):
        super().__init__()
        self.net = net
        self.tasks = tasks

    def forward(self, i: int, batch: dict):
        return self.tasks[i].forward(self.net["model"], batch)


class Replicas:
    """How a step's backward passes give the global batch's gradient on every rank.

    - one process: the model as it is;
    - single-task runs on N processes: DistributedDataParallel over the net (its all-reduce overlaps
      the backward pass; ``no_sync`` for all but the last micro-step). DDP fixes the trainable set when
      it is built, so a freezing plan that changes requires_grad calls ``rebuild`` (a fresh wrapper on
      the new set: exact, and cheaper than find_unused_parameters' graph walk on every step);
    - multi-task runs on N processes: the plain module, and one explicit all-reduce of the gradients
      and the per-task gradients after the backward passes (``reduce``), so PCGrad, GradNorm and the
      conflict matrix see global per-task gradients, and heads a step does not use need no special case.
    """

    def __init__(self, group: Group, net: nn.ModuleDict, tasks: list, device: torch.device):
        self.group, self.net, self.tasks, self.device = group, net, tasks, device
        self.explicit = group.active and len(tasks) > 1
        self.ddp = None
        self.rebuild()

    def rebuild(self) -> None:
        """After requires_grad changed (a freezing plan): wrap the new trainable set."""
        trains = any(p.requires_grad for p in self.net.parameters())
        self.ddp = None
        if self.group.active and not self.explicit and trains:  # DDP refuses a module with nothing to train
            from torch.nn.parallel import DistributedDataParallel

            # buffers are equal by construction (same seed, same updates): no broadcast before each forward
            newer = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
            self.ddp = DistributedDataParallel(
                _TaskForward(self.net, self.tasks), device_ids=[self.device] if self.device.type == "cuda" else None,
                **({"forward_sync_buffers": False} if newer else {"broadcast_buffers": False}))

    def forward(self, i: int, batch: dict):
        if self.ddp is not None:
            return self.ddp(i, batch)
        return self.tasks[i].forward(self.net["model"], batch)

    def accumulating(self, more_to_come: bool):
        """Around one micro-step's forward and backward: no gradient sync until the last one."""
        return self.ddp.no_sync() if self.ddp is not None and more_to_come else contextlib.nullcontext()

    def reduce(self, task_grads) -> None:
        """After the backward passes of a step: average what DDP did not (multi-task runs)."""
        if self.explicit:
            params = [p for p in self.net.parameters() if p.requires_grad]
            self.group.mean_grads_(params, task_grads.grads)
