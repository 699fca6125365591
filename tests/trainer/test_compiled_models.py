"""Compiled models reused across runs in one process: same learning, which graphs share a key."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from trainer import compiled_models
from trainer.compiled_models import CompiledModels, graph_key, load_initial_state
from trainer.preprocessing import affine_for
from trainer.train import compile_options, train

OPTIONS = {"jit_compile": True, "steps_per_execution": 64}


def _kernels(result_dir: Any) -> dict[str, np.ndarray]:
    import keras

    model = keras.saving.load_model(result_dir / "model.keras")
    return {layer.name: np.asarray(layer.kernel) for layer in model.layers if hasattr(layer, "kernel")}


@pytest.mark.parametrize("batch_size", [32, 500])  # XLA-compiled steps, and Keras's default
def test_a_reused_model_learns_exactly_what_a_fresh_one_does(make_spec, tmp_path, batch_size) -> None:
    # Dropout (seeded masks), batch norm (moving statistics) and Nadam (a slot that starts at 1)
    # all carry state that a reused model must take from the new run, not the last one.
    def spec(seed: int, rate: float, name: str) -> Any:
        return make_spec({
            "name": name,
            "data": {"max_train_samples": 600, "max_test_samples": 200},
            "model": {"hidden": [{"type": "dense", "units": 64}, {"type": "dropout", "rate": 0.3},
                                 {"type": "batch_norm"}]},
            "optimizer": {"name": "nadam", "learning_rate": rate},
            "training": {"epochs": 2, "batch_size": batch_size, "seed": seed}})

    compiled_models.PROCESS_MODELS.clear()
    fresh = train(spec(1, 0.002, "wanted"), tmp_path / "fresh", reuse_compiled=False)
    train(spec(2, 0.01, "other"))  # compiles, and leaves its trained model for reuse
    assert len(compiled_models.PROCESS_MODELS) == 1
    reused = train(spec(1, 0.002, "wanted"), tmp_path / "reused")

    assert reused.history["loss"] == fresh.history["loss"]
    assert reused.history["val_accuracy"] == fresh.history["val_accuracy"]
    assert reused.history["learning_rate"] == fresh.history["learning_rate"]
    assert fresh.history["learning_rate"] == pytest.approx([0.002, 0.002])  # float32
    assert reused.evaluation == fresh.evaluation
    fresh_kernels, reused_kernels = _kernels(tmp_path / "fresh"), _kernels(tmp_path / "reused")
    assert fresh_kernels.keys() == reused_kernels.keys()
    assert all(np.array_equal(fresh_kernels[k], reused_kernels[k]) for k in fresh_kernels)
    assert reused.summary == fresh.summary


def test_seed_and_learning_rate_share_a_graph_and_the_rest_does_not(make_spec) -> None:
    base = make_spec({"training": {"seed": 1}, "optimizer": {"name": "adam", "learning_rate": 0.001}})

    def key(overrides: dict[str, Any], options: dict[str, Any] = OPTIONS) -> str:
        spec = make_spec({"training": {"seed": 1}, "optimizer": {"name": "adam"}} | overrides)
        return graph_key(spec, affine_for(spec.data), options)

    same = key({})
    assert same == graph_key(base, affine_for(base.data), OPTIONS)
    assert key({"training": {"seed": 99}}) == same
    assert key({"optimizer": {"name": "adam", "learning_rate": 0.1}}) == same
    assert key({"name": "another name"}) == same
    assert key({"data": {"max_train_samples": 700}}) == same
    different = [
        key({"model": {"hidden": [{"type": "dense", "units": 999}]}}),
        key({"optimizer": {"name": "adam", "beta_1": 0.8}}),
        key({"optimizer": {"name": "sgd"}}),
        key({"training": {"batch_size": 64, "seed": 1}}),
        key({"training": {"loss": "sparse_categorical_crossentropy", "seed": 1}}),
        key({"data": {"scaling": "none"}}),
        key({}, {"jit_compile": False, "steps_per_execution": 1}),
    ]
    assert same not in different and len(set(different)) == len(different)


def test_compile_options_depend_on_the_batch_and_the_steps(make_spec) -> None:
    small = make_spec({"training": {"batch_size": 32}})
    assert compile_options(small, 1875) == {"jit_compile": True, "steps_per_execution": 64}
    assert compile_options(small, 10) == {"jit_compile": True, "steps_per_execution": 10}
    large = make_spec({"data": {"max_train_samples": None}, "training": {"batch_size": 1024}})
    assert compile_options(large, 59) == {"jit_compile": False, "steps_per_execution": 1}


def test_the_cache_keeps_the_most_recent_models_and_lends_each_once() -> None:
    cache = CompiledModels(capacity=2)
    for key in ("a", "b", "c"):
        cache.give_back(key, f"model {key}")
    assert len(cache) == 2
    assert cache.take("a") is None  # the oldest went first
    assert cache.take("c") == "model c"
    assert cache.take("c") is None  # lent out until given back
    cache.give_back("c", "model c")
    cache.give_back("b", "model b")  # used again: now the most recent
    cache.give_back("d", "model d")
    assert cache.take("c") is None and cache.take("b") == "model b"


def test_models_that_do_not_line_up_are_left_untouched() -> None:
    import keras

    def model(units: int) -> Any:
        built = keras.Sequential([keras.Input((4,)), keras.layers.Dense(units)])
        built.compile(optimizer=keras.optimizers.Adam(), loss="mse")
        built.optimizer.build(built.trainable_variables)
        return built

    compiled, other = model(3), model(5)
    before = [np.asarray(v) for v in compiled.variables]
    assert not load_initial_state(compiled, fresh=other, fresh_optimizer=keras.optimizers.Adam())
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, compiled.variables, strict=True))
