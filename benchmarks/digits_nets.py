"""Small numpy networks for the digits accuracy experiment: forward, backward, Adam, masks.

Conv and FC weights are stored as the M x K GEMM view that ``grimsim.pruning`` works on (conv
columns ordered input channel, kernel row, kernel column, which is what ``im2col3x3`` builds),
so a mask from ``make_mask`` applies to ``params["<layer>.w"]`` as it is. Everything is plain
float64 numpy, deterministic for a given seed (on one BLAS thread).

Imported by path from ``benchmarks/accuracy_digits.py`` and ``tests/test_search_sensitivity.py``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from grimsim.network import graph as _graph
from grimsim.network import workload as _wl

Params = dict[str, np.ndarray]
#: layer name -> bool mask (True = kept) of that layer's ``"<name>.w"``
Masks = Mapping[str, np.ndarray]


class Layer(Protocol):
    """One differentiable step; ``backward`` returns (dx or None, parameter gradients)."""

    @property
    def name(self) -> str: ...

    def init(self, rng: np.random.Generator) -> Params: ...

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool) -> tuple[np.ndarray | None, Params]: ...


def im2col3x3(x: np.ndarray) -> np.ndarray:
    """(n, c, h, w) -> (n*h*w, c*9) patches of a 3x3, stride-1, pad-1 convolution; columns
    ordered (channel, kernel row, kernel column) like grimsim's conv GEMM view."""
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(2, 3))  # n,c,h,w,3,3
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * h * w, c * 9)


def _he(rng: np.random.Generator, fan_in: int, shape: tuple[int, int]) -> np.ndarray:
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), shape)


@dataclass(frozen=True)
class Conv3x3:
    """3x3 convolution, stride 1, padding 1 (same size), with bias."""

    name: str
    c_in: int
    c_out: int

    def init(self, rng: np.random.Generator) -> Params:
        k = self.c_in * 9
        return {f"{self.name}.w": _he(rng, k, (self.c_out, k)),
                f"{self.name}.b": np.zeros(self.c_out)}

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
        n, _, h, w = x.shape
        cols = im2col3x3(x)
        y = cols @ params[f"{self.name}.w"].T + params[f"{self.name}.b"]
        return y.reshape(n, h, w, self.c_out).transpose(0, 3, 1, 2), (cols, x.shape)

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool) -> tuple[np.ndarray | None, Params]:
        cols, (n, c, h, w) = cache
        dy2 = dy.transpose(0, 2, 3, 1).reshape(-1, self.c_out)
        grads = {f"{self.name}.w": dy2.T @ cols, f"{self.name}.b": dy2.sum(axis=0)}
        if not need_dx:
            return None, grads
        dcols = (dy2 @ params[f"{self.name}.w"]).reshape(n, h, w, c, 3, 3)
        dxp = np.zeros((n, c, h + 2, w + 2))
        for kr in range(3):  # col2im: scatter each kernel position back onto the input
            for kc in range(3):
                dxp[:, :, kr:kr + h, kc:kc + w] += dcols[..., kr, kc].transpose(0, 3, 1, 2)
        return dxp[:, :, 1:-1, 1:-1], grads


@dataclass(frozen=True)
class Dense:
    """Fully connected layer y = x W^T + b, W of shape (n_out, n_in)."""

    name: str
    n_in: int
    n_out: int

    def init(self, rng: np.random.Generator) -> Params:
        return {f"{self.name}.w": _he(rng, self.n_in, (self.n_out, self.n_in)),
                f"{self.name}.b": np.zeros(self.n_out)}

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
        return x @ params[f"{self.name}.w"].T + params[f"{self.name}.b"], x

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool) -> tuple[np.ndarray | None, Params]:
        grads = {f"{self.name}.w": dy.T @ cache, f"{self.name}.b": dy.sum(axis=0)}
        return (dy @ params[f"{self.name}.w"] if need_dx else None), grads


@dataclass(frozen=True)
class ReLU:
    name: str

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
        positive = x > 0
        return np.where(positive, x, 0.0), positive

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return np.where(cache, dy, 0.0), {}


@dataclass(frozen=True)
class MaxPool2:
    """2x2 max pooling, stride 2 (even sizes); the gradient goes to the first maximum."""

    name: str

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
        n, c, h, w = x.shape
        win = x.reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        win = win.reshape(n, c, h // 2, w // 2, 4)
        idx = np.argmax(win, axis=-1)
        return np.take_along_axis(win, idx[..., None], axis=-1)[..., 0], (idx, x.shape)

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool) -> tuple[np.ndarray | None, Params]:
        idx, (n, c, h, w) = cache
        dwin = np.zeros((*dy.shape, 4))
        np.put_along_axis(dwin, idx[..., None], dy[..., None], axis=-1)
        dx = dwin.reshape(n, c, h // 2, w // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
        return dx.reshape(n, c, h, w), {}


@dataclass(frozen=True)
class Flatten:
    name: str

    def init(self, rng: np.random.Generator) -> Params:
        return {}

    def forward(self, params: Params, x: np.ndarray) -> tuple[np.ndarray, Any]:
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, params: Params, cache: Any, dy: np.ndarray,
                 need_dx: bool) -> tuple[np.ndarray | None, Params]:
        return dy.reshape(cache), {}


@dataclass(frozen=True)
class Net:
    """A sequential network on (n, *input_shape) inputs ending in class logits."""

    name: str
    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...]

    @property
    def prunable(self) -> tuple[str, ...]:
        """Names of the layers with a GEMM weight (conv and FC), in order."""
        return tuple(lay.name for lay in self.layers if isinstance(lay, Conv3x3 | Dense))

    def kernel(self, layer: str) -> tuple[int, int] | None:
        """(3, 3) for a conv layer (what make_mask needs), None for FC."""
        return (3, 3) if isinstance(self._layer(layer), Conv3x3) else None

    def _layer(self, name: str) -> Layer:
        for lay in self.layers:
            if lay.name == name:
                return lay
        raise KeyError(f"{self.name} has no layer {name!r}")


def cnn() -> Net:
    """conv3x3 1->8, conv3x3 8->16, pool, conv3x3 16->32, pool, FC 128->10 (8x8 inputs)."""
    return Net("cnn", (
        Conv3x3("cnn.conv1", 1, 8), ReLU("cnn.relu1"),
        Conv3x3("cnn.conv2", 8, 16), ReLU("cnn.relu2"), MaxPool2("cnn.pool2"),
        Conv3x3("cnn.conv3", 16, 32), ReLU("cnn.relu3"), MaxPool2("cnn.pool3"),
        Flatten("cnn.flatten"), Dense("cnn.fc", 32 * 2 * 2, 10),
    ), (1, 8, 8))


def mlp() -> Net:
    """64-128-64-10 MLP with ReLU on flattened 8x8 inputs."""
    return Net("mlp", (
        Flatten("mlp.flatten"), Dense("mlp.fc1", 64, 128), ReLU("mlp.relu1"),
        Dense("mlp.fc2", 128, 64), ReLU("mlp.relu2"), Dense("mlp.fc3", 64, 10),
    ), (1, 8, 8))


def init_params(net: Net, seed: int) -> Params:
    rng = np.random.default_rng(seed)
    params: Params = {}
    for lay in net.layers:
        params.update(lay.init(rng))
    return params


def apply_masks(params: Params, masks: Masks | None) -> Params:
    """A copy of ``params`` with every masked weight zeroed where its mask is False."""
    out = {k: v.copy() for k, v in params.items()}
    for layer, mask in (masks or {}).items():
        out[f"{layer}.w"] *= mask
    return out


def logits(net: Net, params: Params, x: np.ndarray) -> np.ndarray:
    for lay in net.layers:
        x, _ = lay.forward(params, x)
    return x


def _softmax_xent(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean cross-entropy of logits ``z`` against labels ``y``, and its gradient in ``z``."""
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = z.shape[0]
    loss = -float(logp[np.arange(n), y].mean())
    dz = np.exp(logp)
    dz[np.arange(n), y] -= 1.0
    return loss, dz / n


def loss_and_grads(net: Net, params: Params, x: np.ndarray,
                   y: np.ndarray) -> tuple[float, Params]:
    caches = []
    for lay in net.layers:
        x, cache = lay.forward(params, x)
        caches.append(cache)
    loss, dy = _softmax_xent(x, y)
    grads: Params = {}
    for i in range(len(net.layers) - 1, -1, -1):
        dx, g = net.layers[i].backward(params, caches[i], dy, need_dx=i > 0)
        grads.update(g)
        if dx is not None:
            dy = dx
    return loss, grads


def accuracy(net: Net, params: Params, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits(net, params, x), axis=1) == y))


@dataclass(frozen=True)
class TrainConfig:
    """Adam (Kingma & Ba 2015 defaults for the betas) on shuffled mini-batches."""

    epochs: int
    lr: float = 1e-3
    batch: int = 32
    seed: int = 0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8


def train(net: Net, params: Params, x: np.ndarray, y: np.ndarray, config: TrainConfig,
          masks: Masks | None = None) -> Params:
    """Train a copy of ``params``; masked weights stay exactly zero (their gradient is masked
    and the mask re-applied after every step, so Adam's moments cannot revive them)."""
    params = apply_masks(params, masks)
    keep = {f"{layer}.w": np.asarray(m, dtype=bool) for layer, m in (masks or {}).items()}
    m1 = {k: np.zeros_like(v) for k, v in params.items()}
    m2 = {k: np.zeros_like(v) for k, v in params.items()}
    rng = np.random.default_rng(config.seed)
    step = 0
    for _ in range(config.epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), config.batch):
            batch = order[start:start + config.batch]
            _, grads = loss_and_grads(net, params, x[batch], y[batch])
            step += 1
            c1 = 1.0 - config.beta1 ** step
            c2 = 1.0 - config.beta2 ** step
            for k, g in grads.items():
                if k in keep:
                    g = g * keep[k]
                m1[k] = config.beta1 * m1[k] + (1.0 - config.beta1) * g
                m2[k] = config.beta2 * m2[k] + (1.0 - config.beta2) * g * g
                params[k] -= config.lr * (m1[k] / c1) / (np.sqrt(m2[k] / c2) + config.eps)
                if k in keep:
                    params[k] *= keep[k]
    return params


@dataclass(frozen=True)
class Digits:
    """scikit-learn's 8x8 digits (UCI optdigits test set, 1797 images), scaled to [0, 1]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits_split(test_size: float = 0.25, seed: int = 0) -> Digits:
    """A fixed stratified train/test split (ships with scikit-learn; no download)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.images.reshape(-1, 1, 8, 8).astype(np.float64) / 16.0  # pixel values 0..16
    xtr, xte, ytr, yte = train_test_split(x, data.target, test_size=test_size,
                                          random_state=seed, stratify=data.target)
    return Digits(xtr, ytr.astype(np.int64), xte, yte.astype(np.int64))


def grimsim_network(net: Net, batch: int = 1) -> _graph.Network:
    """The same network as a grimsim ``Network`` (for legality checks and MACs)."""
    b = _graph.NetworkBuilder(net.name)
    blob = "input"
    b.input(blob, (batch, *net.input_shape), layer_name=f"{net.name}.input")
    for lay in net.layers:
        shape = b.shape(blob)
        if isinstance(lay, Conv3x3):
            wl = _wl.conv2d(lay.name, shape, lay.c_out, 3, padding=1)
        elif isinstance(lay, Dense):
            wl = _wl.linear(lay.name, shape, lay.n_out)
        elif isinstance(lay, ReLU):
            wl = _wl.activation_op(lay.name, shape)
        elif isinstance(lay, MaxPool2):
            wl = _wl.pool2d(lay.name, shape, 2)
        else:
            wl = _wl.reshape(lay.name, shape, (shape[0], _wl.numel(shape[1:])))
        b.add(wl, [blob], [lay.name])
        blob = lay.name
    return b.build()
