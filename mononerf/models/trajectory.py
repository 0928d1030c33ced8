"""Point trajectories from the velocity field: discrete Euler steps or a Neural ODE (method.md §2.8).

The velocity field is not a separate network: it is the dynamic head's shared trunk (``lin_in``, the global
blocks conditioned on the global video code, ``sf_linear``), read out as ``tanh(sf_linear(h))`` — a displacement
of at most 1 NDC unit per frame and axis. Time inside the field is the continuous frame index ``τ``
(``t = τ/T·2 − 1`` is what the positional encoding sees).

:class:`VelocityField` is that field as one object, ``field(xyz, tau) -> velocity``; a different velocity network is
a different class with the same call. Integrators are chosen by name from :data:`INTEGRATORS`
(``model.mlp_dynamic.flow_mode``): :class:`EulerSteps` (``discrete``, the released configs') and :class:`NeuralODE`
(``ode``). A new integrator is one class here, with ``from_conf(conf, quirks)`` reading its settings and
``__call__(field, xyz, tau) -> (x_b, x_f)``, and one entry there; its name goes into the choices of
``model.mlp_dynamic.flow_mode`` and its settings into the key table (:mod:`mononerf.config.schema`). The original's
branch-mixup quirk (method.md §8.1) is one isolated function, :func:`_euler_branch_mixup`.

Shapes: S scenes, P points per scene.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mononerf.models.embedder import PositionalEncoding
from mononerf.models.heads import DynamicHead, linear_split
from mononerf.quirks import Quirks
from mononerf.utils.tensors import constant_like


def _embed(embed: PositionalEncoding, xyz: torch.Tensor, tau: torch.Tensor, num_frames: int) -> torch.Tensor:
    t = tau / float(num_frames) * 2.0 - 1.0
    return embed(torch.cat([xyz, t[..., None]], -1))


def velocity(head: DynamicHead, embed: PositionalEncoding, xyz: torch.Tensor, tau: torch.Tensor, num_frames: int,
             global_code: torch.Tensor) -> torch.Tensor:
    """Velocity ``v(x, τ) = tanh(sf_linear(trunk(γ(x, τ), z)))`` in NDC units per frame.

    xyz (S, P, 3), tau (S, P) continuous frame index, global_code (S, G) → (S, P, 3).
    """
    return torch.tanh(head.sf_linear(head.trunk(_embed(embed, xyz, tau, num_frames), global_code)))


@dataclass(frozen=True)
class VelocityField:
    """``v(x, τ)`` of :func:`velocity` for one batch of scenes: the dynamic head's trunk and read-out, the point
    embedding, the frame count and the global video code (S, G). It owns no weights: they are the head's (as in the
    original, whose checkpoints alias them)."""

    head: DynamicHead
    embed: PositionalEncoding
    num_frames: int
    global_code: torch.Tensor

    def __call__(self, xyz: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """xyz (S, P, 3), tau (S, P) continuous frame index → (S, P, 3) NDC units per frame."""
        return velocity(self.head, self.embed, xyz, tau, self.num_frames, self.global_code)


def _euler(field: VelocityField, xyz: torch.Tensor, tau: torch.Tensor, steps: int) -> tuple[torch.Tensor, ...]:
    # both branches start at (x, τ): one evaluation of the field serves both (identical inputs)
    v = field(xyz, tau) / steps
    x_f, x_b = xyz + v, xyz - v
    for i in range(1, steps):
        x_f = x_f + field(x_f, tau + i / steps) / steps
        x_b = x_b - field(x_b, tau - i / steps) / steps
    return x_b, x_f


def _euler_branch_mixup(field: VelocityField, xyz: torch.Tensor, tau: torch.Tensor,
                        steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The original's Euler steps (quirk ``discrete_flow_branch_mixup``, method.md §8.1): the forward branch is rebuilt
    from the BACKWARD hidden state at every global block, and the backward branch never passes through the code
    layers ``lin_global_z``.

    The original computes the forward branch's own input layer and every global block for it, then overwrites that
    hidden state at each block from the backward one: only the last block's output reaches x_f. Those discarded
    evaluations are skipped here; what is kept is the same arithmetic in the same order.
    """
    head, embed, num_frames = field.head, field.embed, field.num_frames
    x_f, x_b = xyz, xyz
    g = torch.zeros_like(field.global_code) if head.zero_features else field.global_code
    n_global = head.n_global_blocks
    for i in range(steps):
        h_b = F.relu(head.lin_in(F.normalize(_embed(embed, x_b, tau - i / steps, num_frames), dim=-1)))
        if n_global == 0:
            h_f = F.relu(head.lin_in(F.normalize(_embed(embed, x_f, tau + i / steps, num_frames), dim=-1)))
        for k in range(n_global):
            if k == n_global - 1:
                h_f = head.global_blocks[k](linear_split(head.lin_global_z[k], h_b, g))
            h_b = head.global_blocks[k](h_b)
        x_f = x_f + torch.tanh(head.sf_linear(h_f)) / steps
        x_b = x_b - torch.tanh(head.sf_linear(h_b)) / steps
    return x_b, x_f


class _DirectedVelocity(nn.Module):
    """``dx/ds = d · v(x, τ0 + d·s)`` for s ∈ [0, 1]: one frame forward (d = +1) or backward (d = −1)."""

    def __init__(self, field: VelocityField, tau0: torch.Tensor, direction: float):
        super().__init__()
        self.field, self.tau0, self.direction = field, tau0, direction

    def forward(self, s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.direction * self.field(x, self.tau0 + self.direction * s)


def _ode(field: VelocityField, xyz: torch.Tensor, tau: torch.Tensor, method: str, rtol: float, atol: float,
         step_size: float | None, adjoint: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchdiffeq import odeint, odeint_adjoint

    options = {"step_size": step_size} if step_size else {}
    span = constant_like((0.0, 1.0), xyz)
    out = []
    for direction in (-1.0, 1.0):
        func = _DirectedVelocity(field, tau, direction)
        if adjoint:
            params = tuple(p for p in field.head.parameters() if p.requires_grad)
            if field.global_code.requires_grad:
                params = params + (field.global_code,)
            sol = odeint_adjoint(func, xyz, span, method=method, rtol=rtol, atol=atol, options=options,
                                 adjoint_params=params)
        else:
            sol = odeint(func, xyz, span, method=method, rtol=rtol, atol=atol, options=options)
        out.append(sol[-1])
    return out[0], out[1]


# ------------------------------------------------------------------------------------------------- integrators
@dataclass(frozen=True)
class EulerSteps:
    """``discrete``: positions at frames τ−1 and τ+1 by ``steps`` explicit Euler steps per frame (method.md §2.8, the
    released configs' mode): step i moves ``x_f += v(x_f, τ + i/steps)/steps`` and ``x_b −= v(x_b, τ − i/steps)/steps``.

    ``branch_mixup`` (quirk ``discrete_flow_branch_mixup``, docs/quirks.md): the original rebuilds the forward branch
    from the BACKWARD hidden state at every global block, and the backward branch never passes through the code layers
    ``lin_global_z`` (so it never sees the global code). False gives both branches the same velocity field.

    ``integrator(field, xyz (S, P, 3) NDC points at τ, tau (S, P) continuous frame index)`` → ``(x_b, x_f)``, (S, P, 3)
    each, absolute NDC positions at τ−1 and τ+1."""

    steps: int = 1
    branch_mixup: bool = True
    pointwise = True  # each point's steps read that point alone (renders may run it over blocks of points)

    @classmethod
    def from_conf(cls, conf, quirks: Quirks) -> "EulerSteps":
        """``conf``: the ``model.mlp_dynamic`` section (``discrete_steps``)."""
        return cls(int(conf.discrete_steps), quirks.discrete_flow_branch_mixup)

    def __call__(self, field: VelocityField, xyz: torch.Tensor, tau: torch.Tensor):
        if self.branch_mixup:  # the original's quirk reads the head's layers directly
            return _euler_branch_mixup(field, xyz, tau, self.steps)
        return _euler(field, xyz, tau, self.steps)


@dataclass(frozen=True)
class NeuralODE:
    """``ode``: positions at τ−1 and τ+1 by integrating ``dx/dτ = v(x, τ)`` with torchdiffeq over one frame each way
    (the paper's Neural ODE), with the original's solver defaults (dopri5, rtol 0.01, atol 0.001; ``step_size`` for
    fixed-step methods). The original's unused "ode" mode hard-codes 12 frames and normalises across points (item 13
    in docs/quirks.md, not switchable); this integrates the velocity field of the Euler steps."""

    method: str = "dopri5"
    rtol: float = 0.01
    atol: float = 0.001
    step_size: float | None = None
    adjoint: bool = False
    pointwise = False  # the adaptive steps are chosen from every point's error together

    @classmethod
    def from_conf(cls, conf, quirks: Quirks) -> "NeuralODE":
        """``conf``: the ``model.mlp_dynamic`` section (``ode_solver``, ``rtol``, ``atol``, ``ode_step_size``,
        ``use_adjoint``)."""
        step = conf.ode_step_size
        return cls(str(conf.ode_solver), float(conf.rtol), float(conf.atol), None if step is None else float(step),
                   bool(conf.use_adjoint))

    def __call__(self, field: VelocityField, xyz: torch.Tensor, tau: torch.Tensor):
        return _ode(field, xyz, tau, self.method, self.rtol, self.atol, self.step_size, self.adjoint)


Integrator = Callable[[VelocityField, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""``integrator(field, xyz (S, P, 3), tau (S, P)) -> (x_b, x_f)``, the positions at τ−1 and τ+1."""

INTEGRATORS = {"discrete": EulerSteps, "ode": NeuralODE}
"""``model.mlp_dynamic.flow_mode`` → integrator class (the key's choices in the key table are these names: a test
checks it)."""


def integrator_from_conf(conf, quirks: Quirks) -> Integrator:
    """The integrator ``conf.flow_mode`` names, with its settings (``conf``: the ``model.mlp_dynamic`` section)."""
    if conf.flow_mode not in INTEGRATORS:
        raise ValueError(f"model.mlp_dynamic.flow_mode must be one of {tuple(INTEGRATORS)}, got {conf.flow_mode!r}")
    return INTEGRATORS[conf.flow_mode].from_conf(conf, quirks)
