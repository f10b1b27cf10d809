"""Critics f(x, y) for the variational bounds.

* separable: f(x, y) = g(x) . h(y) / sqrt(embed_dim), g and h MLP encoders (the scores of a batch
  are one matrix product; the fused kernels apply);
* bilinear: f(x, y) = x^T W y (also separable: g(x) = x W, h(y) = y);
* joint: f(x, y) = MLP([x, y]) on every pair of the batch (n^2 evaluations: the most flexible,
  the most expensive).
"""

from __future__ import annotations

import math

import torch
from torch import nn

CRITICS = ("separable", "bilinear", "joint")


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int) -> nn.Sequential:
    mods, width = [], in_dim
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    mods.append(nn.Linear(width, out_dim))
    return nn.Sequential(*mods)


class SeparableCritic(nn.Module):
    separable = True

    def __init__(self, dx: int, dy: int, hidden: int = 256, layers: int = 2, embed_dim: int = 32):
        super().__init__()
        self.g, self.h = mlp(dx, embed_dim, hidden, layers), mlp(dy, embed_dim, hidden, layers)
        self.scale = 1.0 / math.sqrt(math.sqrt(embed_dim))  # on each side: scores carry 1 / sqrt(embed_dim)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.g(x) * self.scale, self.h(y) * self.scale

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.encode(x, y)
        return a @ b.T


class BilinearCritic(nn.Module):
    separable = True

    def __init__(self, dx: int, dy: int):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(dx, dy))

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x @ self.w, y

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        a, b = self.encode(x, y)
        return a @ b.T


class JointCritic(nn.Module):
    separable = False

    def __init__(self, dx: int, dy: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.f = mlp(dx + dy, 1, hidden, layers)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        pairs = torch.cat([x[:, None, :].expand(n, n, -1), y[None, :, :].expand(n, n, -1)], dim=2)
        return self.f(pairs).squeeze(-1)


def build_critic(name: str, dx: int, dy: int, *, hidden: int, layers: int, embed_dim: int) -> nn.Module:
    if name == "separable":
        return SeparableCritic(dx, dy, hidden, layers, embed_dim)
    if name == "bilinear":
        return BilinearCritic(dx, dy)
    return JointCritic(dx, dy, hidden, layers)
