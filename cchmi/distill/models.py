"""Student and teacher networks: an MLP for feature vectors, a small CNN for image views.

Both return (logits, features): features are the penultimate activations that feature KD and the
CCH's "features" representation use.
"""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, in_dim: int, n_classes: int, hidden: int = 128, depth: int = 2, dropout: float = 0.1):
        super().__init__()
        layers, width = [], in_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, n_classes)
        self.feature_dim = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.head(h), h


class SmallCNN(nn.Module):
    """Two 3x3 convolutions (the second strided), global 4x4 average pooling, one hidden layer."""

    def __init__(self, shape: tuple[int, int, int], n_classes: int, hidden: int = 128, dropout: float = 0.1):
        super().__init__()
        channels = shape[0]
        self.shape = tuple(shape)
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.ReLU(),
            nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        )
        self.body = nn.Sequential(nn.Linear(32 * 16, hidden), nn.ReLU(), nn.Dropout(dropout))
        self.head = nn.Linear(hidden, n_classes)
        self.feature_dim = hidden

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(self.conv(x.reshape(x.shape[0], *self.shape)))
        return self.head(h), h


def build_model(kind: str, in_dim: int, n_classes: int, *, hidden: int, depth: int, dropout: float,
                image_shape=None) -> nn.Module:
    if kind == "mlp":
        return MLP(in_dim, n_classes, hidden=hidden, depth=depth, dropout=dropout)
    if kind == "cnn":
        if image_shape is None:
            raise ValueError("model 'cnn' needs a view that is an image (one with an image shape); use model='mlp'")
        return SmallCNN(tuple(image_shape), n_classes, hidden=hidden, dropout=dropout)
    raise ValueError(f"model must be 'mlp' or 'cnn', got {kind!r}")
