"""Trained models, loaded once per API process and kept warm. TensorFlow loads on first use.

A saved model is a stack of layers the trainer builds (Flatten, Rescaling, Dense, Dropout,
BatchNormalization). Its inference is a handful of matrix products, so once Keras has loaded a
model (safe_mode: built-in layers only) its weights are copied out and the forward pass runs in
numpy: a TensorFlow call costs ~1 ms of dispatch for a few microseconds of arithmetic. The numpy
pass is used only when every layer is understood and it agrees with Keras's own
`predict_on_batch` on probe inputs at load time; any other model is served by Keras.
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

CACHE_SIZE = 8
# Load-time checks of the numpy pass against Keras. Both compute in float32 and sum in different
# orders, so they differ by rounding: ~1e-7 on probabilities for scaled inputs, up to ~3e-5 on
# models fed raw 0-255 pixels (where Keras's own results for batch 1 and batch 200 differ by
# ~1e-5, and exact float64 arithmetic differs from Keras by up to ~4e-5). A wrong formula shows
# up orders of magnitude above these bounds.
AGREEMENT_ATOL = 1e-4  # probabilities, end to end
LAYER_RTOL = 1e-5  # each layer, fed Keras's own input, relative to its rounding scale
ACTIVATION_ATOL, ACTIVATION_RTOL = 1e-6, 1e-5  # each activation, elementwise
PROBES = 16  # random probe images for the load-time check, besides all-0 and all-255

Array = np.ndarray
Step = Callable[[Array], Array]


# Activations, as Keras 3 defines them (float32 in, float32 out)


def _sigmoid(x: Array) -> Array:
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z)).astype(x.dtype, copy=False)


def _softplus(x: Array) -> Array:
    return (np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0)).astype(x.dtype, copy=False)


def _elu(x: Array, alpha: float = 1.0) -> Array:
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0))).astype(x.dtype, copy=False)


def _erfc(x: Array) -> Array:
    """Complementary error function, fractional error < 1.2e-7 everywhere (Numerical Recipes'
    Chebyshev fit); float64 in and out."""
    z = np.abs(x)
    t = 1 / (1 + 0.5 * z)
    poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    ans = t * np.exp(poly)
    return np.where(x >= 0, ans, 2 - ans)


def _gelu(x: Array) -> Array:
    # Keras's "gelu" is the exact one: x * Phi(x) = x/2 * erfc(-x / sqrt 2)
    wide = x.astype(np.float64)
    return (0.5 * wide * _erfc(-wide / np.sqrt(2.0))).astype(x.dtype)


def _softmax(x: Array) -> Array:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805

NUMPY_ACTIVATIONS: dict[str, Step] = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "relu6": lambda x: np.clip(x, 0, 6),
    "leaky_relu": lambda x: np.where(x >= 0, x, np.float32(0.2) * x),
    "sigmoid": _sigmoid,
    "hard_sigmoid": lambda x: np.clip(x + np.float32(3), 0, 6) / np.float32(6),
    "tanh": np.tanh,
    "elu": _elu,
    "selu": lambda x: (_SELU_SCALE * _elu(x, _SELU_ALPHA)).astype(x.dtype, copy=False),
    "gelu": _gelu,
    "swish": lambda x: x * _sigmoid(x),
    "softmax": _softmax,
    "softplus": _softplus,
    "softsign": lambda x: x / (1 + np.abs(x)),
    "mish": lambda x: x * np.tanh(_softplus(x)),
}


class Unsupported(Exception):
    """A layer or setting the numpy pass does not reproduce; Keras serves the model."""


def _weights(variable: Any) -> Array:
    return np.array(variable, dtype=np.float32)


def _activation(function: Any) -> Step:
    import keras

    for name, step in NUMPY_ACTIVATIONS.items():
        if function is keras.activations.get(name):
            return step
    raise Unsupported(f"activation {getattr(function, '__name__', function)!r}")


def _dense(layer: Any) -> Step:
    if getattr(layer, "quantization_mode", None) or getattr(layer, "lora_enabled", False):
        raise Unsupported("quantized or LoRA dense layer")
    kernel = _weights(layer.kernel)
    bias = _weights(layer.bias) if layer.use_bias else None
    activate = _activation(layer.activation)

    def step(x: Array) -> Array:
        y = x @ kernel
        if bias is not None:
            y += bias
        return activate(y)

    return step


def _batch_norm(layer: Any) -> Step:
    if layer.axis not in (-1, 1):
        raise Unsupported(f"batch normalisation over axis {layer.axis}")
    variance = _weights(layer.moving_variance)
    inv = 1 / np.sqrt(variance + np.float32(layer.epsilon))
    if layer.scale:
        inv = inv * _weights(layer.gamma)
    shift = -_weights(layer.moving_mean) * inv
    if layer.center:
        shift = shift + _weights(layer.beta)
    inv, shift = inv.astype(np.float32), shift.astype(np.float32)
    return lambda x: x * inv + shift


def _rescaling(layer: Any) -> Step:
    scale = np.asarray(layer.scale, dtype=np.float32)
    offset = np.asarray(layer.offset, dtype=np.float32)
    return lambda x: x * scale + offset


def numpy_steps(model: Any) -> list[tuple[Any, Step | None]]:
    """The model's inference as (layer, numpy step) pairs, None for an identity at inference;
    Unsupported for anything not reproduced exactly."""
    import keras

    layers = keras.layers
    if not isinstance(model, keras.Sequential):
        raise Unsupported(f"model type {type(model).__name__}")
    steps: list[tuple[Any, Step | None]] = []
    for layer in model.layers:
        kind = type(layer)
        policy = getattr(getattr(layer, "dtype_policy", None), "name", "float32")
        if policy != "float32":
            raise Unsupported(f"layer {layer.name} computes in {policy}")
        if kind is layers.Flatten:
            if layer.data_format != "channels_last":
                raise Unsupported("channels_first flatten")
            steps.append((layer, lambda x: x.reshape(len(x), -1)))
        elif kind is layers.Rescaling:
            steps.append((layer, _rescaling(layer)))
        elif kind is layers.Dense:
            steps.append((layer, _dense(layer)))
        elif kind is layers.Dropout:
            steps.append((layer, None))  # identity at inference
        elif kind is layers.BatchNormalization:
            steps.append((layer, _batch_norm(layer)))
        else:
            raise Unsupported(f"layer {layer.name} ({kind.__name__})")
    return steps


def check_activations(model: Any) -> None:
    """Each activation the model uses, numpy against Keras, elementwise on -30..30."""
    import keras

    grid = np.linspace(-30, 30, 6001, dtype=np.float32).reshape(1, -1)
    for name, step in NUMPY_ACTIVATIONS.items():
        function = keras.activations.get(name)
        if not any(getattr(layer, "activation", None) is function for layer in model.layers):
            continue
        expected = np.asarray(function(grid))
        error = np.abs(step(grid) - expected) - ACTIVATION_RTOL * np.abs(expected)
        if not error.max() <= ACTIVATION_ATOL:
            raise Unsupported(f"activation {name} differs from Keras by {error.max():.2e}")


def _error_scale(layer: Any, x: Array, expected: Array) -> float:
    """What float32 rounding error in a layer's output is relative to: for a dense layer the
    largest sum of |input * weight| (a pre-activation is only that exact, and every activation
    here has a slope of 2 at most); for batch normalisation its largest |input * scale| + |shift|."""
    import keras

    if isinstance(layer, keras.layers.Dense):
        bound = np.abs(x.reshape(len(x), -1)) @ np.abs(_weights(layer.kernel))
        if layer.use_bias:
            bound += np.abs(_weights(layer.bias))
        return 2 * max(1.0, float(bound.max()))
    if isinstance(layer, keras.layers.BatchNormalization):
        inv = 1 / np.sqrt(_weights(layer.moving_variance) + np.float32(layer.epsilon))
        if layer.scale:
            inv = inv * _weights(layer.gamma)
        shift = np.abs(_weights(layer.moving_mean) * inv)
        if layer.center:
            shift = shift + np.abs(_weights(layer.beta))
        return max(1.0, float((np.abs(x) * np.abs(inv) + shift).max()))
    return max(1.0, float(np.abs(expected).max()))


def check_layers(steps: list[tuple[Any, Step | None]], probes: Array) -> None:
    """Each step against its Keras layer, both fed the output of the Keras layer before it."""
    x = probes
    for layer, step in steps:
        expected = np.asarray(layer(x, training=False))
        got = x if step is None else step(x)
        error = float(np.abs(got - expected).max()) if got.shape == expected.shape else np.inf
        if not error <= LAYER_RTOL * _error_scale(layer, x, expected):  # also catches NaN
            raise Unsupported(f"layer {layer.name} differs from Keras by {error:.2e}")
        x = expected


def _run(steps: list[Step], pixels: Array) -> Array:
    x = pixels
    for step in steps:
        x = step(x)
    return x


def probe_images(seed: int = 0) -> Array:
    rng = np.random.default_rng(seed)
    random = rng.integers(0, 256, size=(PROBES, 28, 28)).astype(np.float32)
    sparse = random * (rng.random((PROBES, 28, 28)) < 0.2)  # mostly background, like digits
    ends = np.stack([np.zeros((28, 28)), np.full((28, 28), 255.0)]).astype(np.float32)
    return np.concatenate([random, sparse, ends])


_blas_limited = False


def limit_blas_threads(threads: int = 1) -> bool:
    """Make numpy's OpenBLAS use `threads` threads in this process (unless OPENBLAS_NUM_THREADS
    or OMP_NUM_THREADS already says how many); returns whether it was set.

    A server predicts many small batches side by side: BLAS worker threads add nothing there,
    and on a busy machine they wait for each other (p99 of one 784x1000 product: 0.2 ms with
    one thread, 15 ms with two while another process holds a core).
    """
    global _blas_limited
    if _blas_limited or os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return False
    _blas_limited = True
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line and "/" in line}
    except OSError:
        return False
    for path in paths:
        for symbol in ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                       "openblas_set_num_threads64_", "openblas_set_num_threads"):
            try:
                setter = getattr(ctypes.CDLL(path), symbol)
            except (OSError, AttributeError):
                continue
            setter(ctypes.c_int(threads))
            return True
    return False


class Predictor:
    """A saved model behind a fast call: raw 0-255 pixels (n, 28, 28) -> probabilities (n, 10).

    `engine` says what serves it: "numpy" (the weights' forward pass, checked against Keras at
    load) or "keras" (`predict_on_batch`), with `fallback_reason` saying why.
    """

    def __init__(self, path: Path) -> None:
        import keras

        # safe_mode: the file may only describe built-in layers, never arbitrary code.
        self.model = keras.saving.load_model(path, safe_mode=True, compile=False)
        self.path = path
        self.engine = "keras"
        self.fallback_reason: str | None = None
        self._steps: list[Step] | None = None
        try:
            pairs = numpy_steps(self.model)
            steps = [step for _layer, step in pairs if step is not None]
            check_activations(self.model)
            probes = probe_images()
            check_layers(pairs, probes)
            expected = self._keras(probes)
            got = _run(steps, probes)
            if got.shape != expected.shape:
                raise Unsupported(f"output shape {got.shape} != {expected.shape}")
            difference = float(np.abs(got - expected).max())
            if not difference <= AGREEMENT_ATOL:  # also catches NaN
                raise Unsupported(f"numpy pass differs from Keras by {difference:.2e}")
        except Unsupported as exc:
            self.fallback_reason = str(exc)
        else:
            self._steps, self.engine = steps, "numpy"
            limit_blas_threads()

    def _keras(self, pixels: Array) -> Array:
        # predict_on_batch skips model.predict's per-call data pipeline (~40 ms -> ~1 ms).
        return np.asarray(self.model.predict_on_batch(pixels))

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(pixels, dtype=np.float32)
        if self._steps is not None:
            return _run(self._steps, x)
        return self._keras(x)


class ModelCache:
    """Least-recently-used predictors keyed by experiment id and model file version."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, float], Predictor] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, experiment_id: str, path: Path) -> Predictor:
        key = (experiment_id, path.stat().st_mtime)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        predictor = Predictor(path)  # outside the lock: loading takes a while
        with self._lock:
            self._items[key] = predictor
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return predictor

    def forget(self, experiment_id: str) -> None:
        with self._lock:
            for key in [k for k in self._items if k[0] == experiment_id]:
                del self._items[key]

    def __contains__(self, experiment_id: Any) -> bool:
        return any(k[0] == experiment_id for k in self._items)
