"""`python -m trainer`: recipes, schema, train; bad input exits 2 naming the problem."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.artifacts import MODEL_FILE, PLOT_NAMES, PLOTS_DIR, RESULT_FILE, SPEC_FILE
from trainer.cli import main
from trainer.recipes import catalogue, get_recipe
from trainer.spec import ExperimentSpec, json_schema

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, data_dir: Path, cwd: Path = REPO_ROOT,
            timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "MNISTLAB_DATA_DIR": str(data_dir)}
    return subprocess.run([sys.executable, "-m", "trainer", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def test_recipes_lists_every_recipe(sample_dir: Path) -> None:
    done = run_cli("recipes", data_dir=sample_dir)
    assert done.returncode == 0, done.stderr
    listed = [line.split()[0] for line in done.stdout.splitlines()
              if line and not line[0].isspace()]
    assert listed == list(catalogue())
    for name, recipe in catalogue().items():
        assert recipe.title in done.stdout, name


def test_recipes_json_is_the_catalogue(sample_dir: Path) -> None:
    done = run_cli("recipes", "--json", data_dir=sample_dir)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert list(listed) == list(catalogue())
    for name, entry in listed.items():
        assert ExperimentSpec.model_validate(entry["spec"]) == get_recipe(name).spec


def test_schema_prints_the_json_schema(capsys: pytest.CaptureFixture) -> None:
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out) == json_schema()


def test_train_a_recipe_writes_its_artifacts(sample_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    done = run_cli("train", "--recipe", "scaled", "--epochs", "1", "--max-train-samples", "500",
                   "--out", str(out), data_dir=sample_dir, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for relative in (MODEL_FILE, SPEC_FILE, RESULT_FILE,
                     *(f"{PLOTS_DIR}/{name}.png" for name in PLOT_NAMES)):
        assert (out / relative).is_file(), relative
    spec = ExperimentSpec.model_validate_json((out / SPEC_FILE).read_text())
    recipe = get_recipe("scaled").spec
    assert (spec.training.epochs, spec.data.max_train_samples) == (1, 500)
    assert spec.model == recipe.model and spec.optimizer == recipe.optimizer
    assert spec.data.scaling == recipe.data.scaling
    assert spec.training.batch_size == recipe.training.batch_size
    result = json.loads((out / RESULT_FILE).read_text())
    assert result["epochs_run"] == 1 and result["stop_reason"] == "completed"
    # The console shows the epoch and the final figure, as stored.
    assert "epoch    1/1" in done.stdout
    assert f"test accuracy {result['evaluation']['test_accuracy']:.4f}" in done.stdout
    assert not (tmp_path / "runs").exists(), "--out is where everything goes"


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"training": {"epochs": 0}}, "training.epochs"),
        ({"data": {"scailng": "none"}}, "data.scailng"),
        ({"optimizer": {"name": "adamx"}}, "adamx"),
        ({"model": {"hidden": [{"type": "dense", "unit": 10}]}}, "model.hidden.0.dense.unit"),
    ],
)
def test_bad_spec_file_exits_2_naming_the_field(
    spec: dict, named: str, sample_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec))
    done = run_cli("train", str(path), "--out", str(tmp_path / "out"), data_dir=sample_dir)
    assert done.returncode == 2
    assert named in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--recipe", "scaeld"], "scaeld"),
        (["--recipe", "scaled", "--epochs", "0"], "training.epochs"),
        (["--recipe", "scaled", "--epochs", "1", "--batch-size", "0"], "training.batch_size"),
        (["--recipe", "scaled", "--epochs", "1", "--max-train-samples", "0"],
         "data.max_train_samples"),
        (["--recipe", "batch-30000", "--epochs", "1", "--max-train-samples", "500"],
         "training.batch_size"),
        (["does-not-exist.json"], "does-not-exist.json"),
        ([], "--recipe"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    args: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    assert main(["train", *args, "--out", str(out)]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_malformed_json_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "spec.json"
    path.write_text('{"training": {"epochs": 1,}}')
    assert main(["train", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "invalid experiment" in capsys.readouterr().err


def test_train_a_spec_file_with_overrides(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "spec.json"
    path.write_text(json.dumps({"name": "from a file", "data": {"scaling": "standard"},
                                "model": {"hidden": [{"type": "dense", "units": 32}]},
                                "training": {"epochs": 50, "batch_size": 64}}))
    out = tmp_path / "out"
    assert main(["train", str(path), "--epochs", "1", "--batch-size", "300",
                 "--max-train-samples", "600", "--out", str(out)]) == 0
    spec = ExperimentSpec.model_validate_json((out / SPEC_FILE).read_text())
    assert spec.name == "from a file"
    assert spec.data.scaling == "standard" and spec.data.max_train_samples == 600
    assert (spec.training.epochs, spec.training.batch_size) == (1, 300)
    assert spec.model.hidden[0].units == 32
    assert f"artifacts in {out}" in capsys.readouterr().out
