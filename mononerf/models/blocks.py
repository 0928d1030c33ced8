"""Fully connected residual block shared by both heads (method.md §2.9)."""

from __future__ import annotations

import torch
from torch import nn


class ResnetBlockFC(nn.Module):
    """``x + fc_1(act(fc_0(act(x))))`` with an identity shortcut and PyTorch's default init (method.md §2.9).

    ``beta > 0`` uses Softplus(beta) instead of ReLU (config key ``beta``; 0 in every released config).
    """

    def __init__(self, size: int, beta: float = 0.0):
        super().__init__()
        self.fc_0 = nn.Linear(size, size)
        self.fc_1 = nn.Linear(size, size)
        self.activation = nn.Softplus(beta=beta) if beta > 0 else nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled() and isinstance(self.activation, nn.ReLU):
            # renders: the same operations, the activation and the shortcut applied in place on temporaries
            # (two fewer multi-megabyte allocations per block)
            net = self.fc_0(torch.relu(x)).relu_()
            return self.fc_1(net).add_(x)
        return x + self.fc_1(self.activation(self.fc_0(self.activation(x))))
