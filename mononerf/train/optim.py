"""The optimiser of a training stage and its learning-rate schedule (method.md §5.2), with the dynamic recipe's levers.

The original: one Adam (betas 0.9 / 0.999, eps 1e-8) over the stage's parameters at ``lrate``, and after each step
``lr = lrate · 0.1^(step / lrate_decay)`` — so step 0 runs at ``lrate`` and step k at the value set after step k-1.

The levers (``docs/training.md``; every default is the original's, and then the optimiser and its state are exactly
the original's):

* ``train.dynamic_lrate_warmup = W``: the dynamic stage's step k runs at ``min(1, (k+1)/W)`` times the rate above
  (a linear warm-up; Adam's first, bias-corrected steps move every weight by about the rate, spec/docs/parity.md).
* ``train.lrate_scale_global_code`` / ``train.lrate_scale_blending``: the rate of the global-code MLP (``ode_fc``) /
  of the blending head (``weight_linear``) of the dynamic head, as a multiple of the rate; a scale other than 1
  puts those parameters in a parameter group of their own.
* ``train.adam_eps``: Adam's epsilon.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn


def learning_rate(base: float, step: int, decay_steps: int) -> float:
    """``lrate · 0.1^(step / lrate_decay)`` (method.md §5.2), set after each optimiser step."""
    return base * 0.1 ** (step / decay_steps)


def warmup_factor(step: int, warmup: int) -> float:
    """``min(1, (step + 1) / warmup)`` for step ``step`` of a stage with a ``warmup``-step linear warm-up (1 if 0)."""
    return 1.0 if warmup <= 0 else min(1.0, (step + 1) / warmup)


@dataclass
class OptimSettings:
    """Adam and its schedule for one stage.

    Attributes:
        lrate: base rate (``train.lrate``).  lrate_decay: decay period in steps (``train.lrate_decay``).
        adam_eps: Adam's epsilon (``train.adam_eps``).
        warmup: linear warm-up steps (``train.dynamic_lrate_warmup`` in the dynamic stage; 0 = none).
        group_scales: parameter-name prefix → rate multiplier, for the parameters whose name starts with it.
    """

    lrate: float = 5e-4
    lrate_decay: int = 300000
    adam_eps: float = 1e-8
    warmup: int = 0
    group_scales: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_conf(cls, cfg, dynamic: bool) -> "OptimSettings":
        t = cfg.train
        scales = {}
        if dynamic:
            scales = {"mlp_dynamic.ode_fc.": float(t.lrate_scale_global_code),
                      "mlp_dynamic.weight_linear.": float(t.lrate_scale_blending)}
        return cls(lrate=float(t.lrate), lrate_decay=int(t.lrate_decay), adam_eps=float(t.adam_eps),
                   warmup=int(t.dynamic_lrate_warmup) if dynamic else 0,
                   group_scales={k: v for k, v in scales.items() if v != 1.0})

    def rate(self, step: int) -> float:
        """The (unscaled) rate step ``step`` of the stage runs at."""
        base = self.lrate if step <= 0 else learning_rate(self.lrate, step - 1, self.lrate_decay)
        return base * warmup_factor(step, self.warmup)

    def build(self, model: nn.Module, params: list[nn.Parameter], start: int = 0) -> torch.optim.Adam:
        """Adam over ``params`` (named through ``model``), its groups at the rate of step ``start``.

        One group unless ``group_scales`` names some of them (then one group per scale, in the order given).
        """
        names = {id(p): n for n, p in model.named_parameters()}
        groups: list[dict] = []
        rest = list(params)
        for prefix, scale in self.group_scales.items():
            picked = [p for p in rest if names.get(id(p), "").startswith(prefix)]
            if picked:
                ids = {id(p) for p in picked}
                rest = [p for p in rest if id(p) not in ids]
                groups.append({"params": picked, "lr_scale": scale})
        groups.insert(0, {"params": rest})  # no lr_scale key: the default state dict is the original's
        rate = self.rate(start)
        for g in groups:
            g["lr"] = rate * g.get("lr_scale", 1.0)
        return torch.optim.Adam(groups, lr=rate, betas=(0.9, 0.999), eps=self.adam_eps)

    def after_step(self, optimizer: torch.optim.Optimizer, step: int) -> None:
        """Set the rate of step ``step + 1`` after step ``step`` (the original's order, method.md §5.2)."""
        rate = self.rate(step + 1)
        for g in optimizer.param_groups:
            g["lr"] = rate * g.get("lr_scale", 1.0)
