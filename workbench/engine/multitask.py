"""Several tasks on one trunk: which tasks a step trains, and how their losses are combined.

Each task has its own forward pass (its own batch), so the trainer backpropagates one task at a
time and the total gradient is the sum of the per-task ones. That makes the per-task gradients
on the shared parameters available for free whenever they are needed: for PCGrad, for GradNorm,
and for the conflict matrix (cosine similarity between the tasks' gradients) that the GUI shows.

``TaskSampler`` picks a step's tasks, a ``Weighting`` turns each task's loss into its term, and
``TaskGradients`` keeps the per-task gradients of a step for the weightings and the conflict report.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from .config import MultitaskConfig, TaskConfig
from .events import TaskBalance


# -- sampling --------------------------------------------------------------------------------


class TaskSampler:
    """Chooses the tasks of each step. Randomness comes from the batch generator (exact resume)."""

    def __init__(self, tasks: list[TaskConfig], cfg: MultitaskConfig):
        self.mode = cfg.sampling
        self.n = len(tasks)
        w = torch.tensor([t.weight for t in tasks], dtype=torch.float64)
        if self.mode == "temperature":
            w = w ** (1.0 / cfg.temperature)
        self.probs = (w / w.sum()) if w.sum() > 0 else torch.full((self.n,), 1.0 / self.n, dtype=torch.float64)

    def tasks_for_step(self, step: int, gen: torch.Generator) -> list[int]:
        if self.mode == "all" or self.n == 1:
            return list(range(self.n))
        if self.mode == "round_robin":
            return [step % self.n]
        return [int(torch.multinomial(self.probs, 1, generator=gen))]


# -- weighting -------------------------------------------------------------------------------


class Weighting(nn.Module):
    """Turns one task's loss into its term of the total loss; may learn, may rewrite gradients."""

    needs_task_grads = False  # does it need the per-task gradients on the shared parameters?

    def __init__(self, tasks: list[TaskConfig], cfg: MultitaskConfig):
        super().__init__()
        self.n = len(tasks)
        self.sampling_all = cfg.sampling == "all"
        self.register_buffer("fixed", torch.tensor([t.weight for t in tasks], dtype=torch.float32))

    def term(self, i: int, loss: torch.Tensor) -> torch.Tensor:
        # With one task drawn per step the weights already acted as sampling probabilities.
        return loss * self.fixed[i] if self.sampling_all else loss

    def weights(self) -> list[float]:
        return self.fixed.tolist() if self.sampling_all else [1.0] * self.n

    def combine_shared(self, grads: torch.Tensor, active: list[int], gen: torch.Generator) -> torch.Tensor | None:
        """Given per-task gradients (n, P) of the terms, return the shared gradient to use, or None
        to keep their plain sum."""
        return None

    def after_step(self, losses: dict[int, float], task_grad_norms: dict[int, float]) -> None:
        pass


class Average(Weighting):
    def __init__(self, tasks, cfg):
        super().__init__(tasks, cfg)
        self.fixed.fill_(1.0 / self.n)


class Uncertainty(Weighting):
    """Kendall, Gal & Cipolla 2018: total = sum_i 0.5 * exp(-s_i) * L_i + 0.5 * s_i with s_i = log sigma_i^2
    learned. A noisier task (higher irreducible loss) ends up with a larger s_i: a smaller weight."""

    def __init__(self, tasks, cfg):
        super().__init__(tasks, cfg)
        self.log_vars = nn.Parameter(torch.zeros(self.n))

    def term(self, i, loss):
        s = self.log_vars[i]
        return 0.5 * torch.exp(-s) * loss + 0.5 * s

    def weights(self):
        return (0.5 * torch.exp(-self.log_vars.detach())).tolist()


class GradNorm(Weighting):
    """Chen et al. 2018: learn weights w_i so that each task's gradient norm on the last shared layer,
    ||grad w_i L_i||, approaches the mean norm times (relative inverse training rate)^alpha. The weights
    are renormalised to sum to the number of tasks after every update."""

    needs_task_grads = True

    def __init__(self, tasks, cfg):
        super().__init__(tasks, cfg)  # config validation guarantees sampling = "all"
        self.alpha, self.lr = cfg.gradnorm_alpha, cfg.gradnorm_lr
        self.register_buffer("w", torch.ones(self.n))
        self.register_buffer("initial_loss", torch.zeros(self.n))

    def term(self, i, loss):
        return self.w[i] * loss

    def weights(self):
        return self.w.tolist()

    def after_step(self, losses, task_grad_norms):
        if len(task_grad_norms) < self.n or not all(map(math.isfinite, task_grad_norms.values())):
            return  # a skipped (overflowed) step teaches nothing; inf would make the weights NaN for good
        L = torch.tensor([losses[i] for i in range(self.n)])
        if (self.initial_loss == 0).any():
            self.initial_loss.copy_(L.clamp_min(1e-8))
        g = torch.tensor([task_grad_norms[i] for i in range(self.n)])  # ||grad of w_i L_i||
        ratio = L / self.initial_loss
        r = ratio / ratio.mean()
        target = g.mean() * r ** self.alpha
        # d/dw_i |w_i G_i - target_i| with G_i = g_i / w_i and the target held constant
        unweighted = g / self.w.clamp_min(1e-8)
        grad = torch.sign(g - target) * unweighted
        w = (self.w - self.lr * grad).clamp_min(1e-3)
        self.w.copy_(w * self.n / w.sum())


class PCGrad(Weighting):
    """Yu et al. 2020: where two tasks' gradients conflict (negative dot product), project each onto the
    normal plane of the other, in random order, then sum. Each gradient is of the task's weighted loss
    (config validation guarantees sampling = "all", where ``term`` applies the weights)."""

    needs_task_grads = True

    # The tasks' weights scale their losses (as with fixed weighting) before the projection.

    def combine_shared(self, grads, active, gen):
        return pcgrad_project(grads[active], gen).sum(0)


def pcgrad_project(grads: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """grads (n, P) -> projected (n, P). Each g_i is made orthogonal to every g_j it conflicts with."""
    out = grads.clone()
    n = grads.size(0)
    for i in range(n):
        order = torch.randperm(n, generator=gen).tolist()
        for j in order:
            if j == i:
                continue
            dot = torch.dot(out[i], grads[j])
            if dot < 0:
                out[i] -= dot / grads[j].pow(2).sum().clamp_min(1e-20) * grads[j]
    return out


def conflict_matrix(grads: torch.Tensor, active: list[int] | None = None) -> torch.Tensor:
    """Cosine similarity between the rows of grads (n, P): (n, n); 1 agree, 0 unrelated, -1 opposed.
    Only the ``active`` tasks (those that had a batch in the step; default all) have a gradient: every
    pair involving another task is NaN, "not measured", never a misleading 0."""
    unit = grads / grads.norm(dim=1, keepdim=True).clamp_min(1e-20)
    sim = unit @ unit.T
    if active is not None:
        measured = torch.zeros(grads.size(0), dtype=torch.bool, device=grads.device)
        measured[list(active)] = True
        sim = sim.masked_fill(~(measured[:, None] & measured[None, :]), float("nan"))
    return sim


WEIGHTINGS = {"fixed": Weighting, "average": Average, "uncertainty": Uncertainty, "gradnorm": GradNorm,
              "pcgrad": PCGrad}


def build_weighting(tasks: list[TaskConfig], cfg: MultitaskConfig) -> Weighting:
    return WEIGHTINGS[cfg.weighting](tasks, cfg)


# -- the per-task gradients of one step ------------------------------------------------------


class TaskGradients:
    """The per-task gradients of a step on the shared trunk (every parameter but the task heads),
    read off as the change of the flat gradient across each task's backward pass: no second
    backward, no retained graphs. Kept only in steps that need them (PCGrad and GradNorm always, a
    conflict report every ``conflict_every`` steps); in other steps, and in single-task runs, every
    method is a no-op. The trainer calls ``start``, ``measure`` around each backward, ``combine``
    before unscaling and ``finish`` after the optimizer step."""

    def __init__(self, model: nn.Module, weighting: Weighting, task_names: list[str], conflict_every: int):
        self.model, self.weighting, self.names = model, weighting, list(task_names)
        self.conflict_every = conflict_every
        self.shared = [p for n, p in model.named_parameters() if not n.startswith("heads.")]
        self.grads: torch.Tensor | None = None  # (tasks, shared trainable numbers) in a step that needs them
        self.active: list[int] = []
        self.report_due = False

    def start(self, step: int, active: list[int]) -> None:
        """Before the backward passes of ``step`` (1-based), which trains the tasks ``active``."""
        n = len(self.names)
        self.active = active
        self.report_due = n > 1 and bool(self.conflict_every) and step % self.conflict_every == 0
        self.grads = None
        if n > 1 and (self.weighting.needs_task_grads or self.report_due):
            size = sum(p.numel() for p in self.shared if p.requires_grad)  # freezing may change it
            self.grads = torch.zeros(n, size, device=self.shared[0].device)

    @contextlib.contextmanager
    def measure(self, i: int):
        """Around task ``i``'s backward pass: its share of the gradient is what the pass added."""
        if self.grads is None:
            yield
            return
        before = self.flat()
        yield
        self.grads[i] += self.flat() - before

    def combine(self, gen: torch.Generator) -> None:
        """Let the weighting rewrite the shared gradient from the per-task ones (PCGrad projects)."""
        if self.grads is not None:
            combined = self.weighting.combine_shared(self.grads, self.active, gen)
            if combined is not None:
                self._set_flat(combined)

    def finish(self, step: int, losses: dict[int, float], updated: bool, scale: float) -> TaskBalance | None:
        """After the update: GradNorm learns from the tasks' gradient norms (``scale``: the loss scale
        the gradients carried); returns the conflict report when one is due. A step the fp16 scaler
        skipped (``updated`` False) or with non-finite norms teaches nothing and reports nothing."""
        if self.grads is None:
            return None
        last = self._last_layer()
        norms = {i: float(self.grads[i, last].norm()) / scale for i in self.active}
        if not (updated and all(math.isfinite(v) for v in norms.values())):
            return None
        self.weighting.after_step(losses, norms)
        if not self.report_due:
            return None
        conflict = conflict_matrix(self.grads, self.active).float().cpu().numpy()
        return TaskBalance(step, list(self.names), self.weighting.weights(), conflict)

    def flat(self) -> torch.Tensor:
        """The shared trainable parameters' gradients as one vector (zeros where there is none yet)."""
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                          for p in self.shared if p.requires_grad])

    def _set_flat(self, flat: torch.Tensor) -> None:
        offset = 0
        for p in self.shared:
            if not p.requires_grad:
                continue
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p).clone()
            offset += n

    def _last_layer(self) -> slice:
        """Where the last block's MLP output weights sit in the flat gradient (GradNorm's W)."""
        target = self.model.transformer.h[-1].mlp.c_proj.weight
        offset = 0
        for p in self.shared:
            if not p.requires_grad:
                continue
            if p is target:
                return slice(offset, offset + p.numel())
            offset += p.numel()
        return slice(0, offset)
