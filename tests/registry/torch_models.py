"""A small importable PyTorch module for the state-dict round trip."""

from __future__ import annotations

import torch


class TinyNet(torch.nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.n_in = n_in
        self.lin = torch.nn.Linear(n_in, 8)
        self.out = torch.nn.Linear(8, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.lin(x)))
