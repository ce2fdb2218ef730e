"""Predictor networks: OFA-style MLP on the one-hot encoding, ridge regression on it (the MLP without
hidden layers, fitted in closed form), and a GCN on the graph encoding.

Both accept an optional per-sample device feature vector (hardware descriptor, latencies of
reference architectures) that is concatenated before the regression head, and an optional
learned device embedding: the inputs of multi-device and hardware-generalized predictors.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def mlp(sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class _DeviceInputs(nn.Module):
    """Concatenates device features and a learned device embedding to a representation."""

    def __init__(self, device_dim: int = 0, num_devices: int = 0, embedding_dim: int = 0):
        super().__init__()
        self.device_dim = device_dim
        self.embedding = nn.Embedding(num_devices, embedding_dim) if num_devices and embedding_dim else None
        self.extra_dim = device_dim + (embedding_dim if self.embedding is not None else 0)

    def forward(self, h: torch.Tensor, batch: dict) -> torch.Tensor:
        parts = [h]
        if self.device_dim:
            parts.append(batch["device_features"])
        if self.embedding is not None:
            parts.append(self.embedding(batch["device_id"]))
        return torch.cat(parts, dim=1) if len(parts) > 1 else h


class MLPPredictor(nn.Module):
    """Encoding (+ device inputs) -> hidden layers (OFA/Syed: 3 x 400, ReLU) -> 1."""

    def __init__(self, input_dim: int, hidden: Sequence[int] = (400, 400, 400), dropout: float = 0.0,
                 device_dim: int = 0, num_devices: int = 0, embedding_dim: int = 0, outputs: int = 1):
        super().__init__()
        self.device_inputs = _DeviceInputs(device_dim, num_devices, embedding_dim)
        self.net = mlp([input_dim + self.device_inputs.extra_dim, *hidden, int(outputs)], dropout)

    def forward(self, batch: dict) -> torch.Tensor:
        """``(N,)``; with ``outputs`` > 1 (the interval's quantile heads beside the point) ``(N, outputs)``."""
        out = self.net(self.device_inputs(batch["x"], batch))
        return out.squeeze(1) if out.shape[1] == 1 else out


class GCNPredictor(nn.Module):
    """Graph convolutions over the op graph (BRP-NAS style), mean-pooled, then an MLP head.

    Propagation uses the adjacency in both directions plus self loops, row-normalized.
    """

    def __init__(self, node_features: int, hidden: int = 128, layers: int = 4, head: Sequence[int] = (128,),
                 dropout: float = 0.0, device_dim: int = 0, num_devices: int = 0, embedding_dim: int = 0):
        super().__init__()
        self.convs = nn.ModuleList(nn.Linear(node_features if i == 0 else hidden, hidden) for i in range(layers))
        self.dropout = nn.Dropout(dropout)
        self.device_inputs = _DeviceInputs(device_dim, num_devices, embedding_dim)
        self.head = mlp([hidden + self.device_inputs.extra_dim, *head, 1], dropout)

    @staticmethod
    def propagation(adj: torch.Tensor) -> torch.Tensor:
        eye = torch.eye(adj.shape[-1], dtype=adj.dtype, device=adj.device)
        a = ((adj + adj.transpose(1, 2)) > 0).to(adj.dtype) + eye
        return a / a.sum(-1, keepdim=True)

    def forward(self, batch: dict) -> torch.Tensor:
        a = self.propagation(batch["adj"])
        h = batch["ops"]
        for conv in self.convs:
            h = self.dropout(torch.relu(a @ conv(h)))
        return self.head(self.device_inputs(h.mean(dim=1), batch)).squeeze(1)


MODELS = ("mlp", "ridge", "gcn")


def build_model(kind: str, **kwargs) -> nn.Module:
    from hwnas.errors import ConfigError

    if kind == "mlp":
        return MLPPredictor(**kwargs)
    if kind == "ridge":  # one linear layer, solved in closed form (hwnas.predictors.estimator.solve_ridge)
        return MLPPredictor(**{**kwargs, "hidden": ()})
    if kind == "gcn":
        return GCNPredictor(**kwargs)
    raise ConfigError(f"predictor model {kind!r} is not allowed; allowed: {', '.join(MODELS)}")
