"""Reproduce the chapter: run every recipe through the service (HTTP only) and write
docs/RESULTS.md with the figures the service draws.

    mnistlab serve &                       # the one-command service
    python bench/reproduce.py              # full catalogue, budgets below
    python bench/reproduce.py --recipes scaled,vanilla --scale 0.2

Budgets: the chapter trains for up to 500 epochs, hours each on a 2-core CPU. Each recipe gets
the epochs below, enough to show its effect; a run records its seed (the recipe's, 42), so a
second run of this script on the same machine gives the same table.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = {"succeeded", "failed", "cancelled"}

# Epochs per recipe on this machine (the chapter's in brackets).
BUDGETS: dict[str, int] = {
    "vanilla": 30,       # [500]
    "scaled": 30,        # [500]
    "inverted": 10,      # [10]
    "batch-30000": 30,   # [10]: longer, to see it start to catch up
    "deep": 30,          # [250]
    "lr-0.001": 40,      # [500]
    "lr-0.01": 40,       # [500]
    "lr-0.1": 40,        # [500]
    "sgd": 30,           # [100]
    "overfit-5": 5,      # [5]
    "overfit-100": 100,  # [100]
    "l2": 60,            # [500]
    "no-dropout": 100,   # [100]
    "dropout": 100,      # [100]
    "l2-0.01": 100,      # [100]
    "batchnorm": 100,    # [100]
}


@dataclass
class Run:
    recipe: str
    id: str
    epochs: int
    status: str = "queued"
    experiment: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list] = field(default_factory=dict)
    weights: list[dict[str, Any]] = field(default_factory=list)

    @property
    def metrics(self) -> dict[str, Any]:
        return self.experiment.get("metrics") or {}

    def val_at(self, epoch: int) -> float:
        """Test accuracy after `epoch` epochs (1-based)."""
        return self.history["val_accuracy"][epoch - 1]

    @property
    def wall_seconds(self) -> float:
        start = datetime.fromisoformat(self.experiment["started_at"])
        end = datetime.fromisoformat(self.experiment["finished_at"])
        return (end - start).total_seconds()

    @property
    def gap(self) -> float:
        """Train minus test accuracy after training."""
        return self.metrics["train_accuracy"] - self.metrics["test_accuracy"]

    def kernel(self, layer: str = "dense_1") -> dict[str, Any]:
        return next(w for w in self.weights if w["layer"] == layer)


@dataclass
class Comparison:
    title: str
    recipes: list[str]
    chapter: str
    verdict: Callable[[dict[str, Run]], tuple[bool, str]]
    weights: bool = False
    if_not: str = ""  # the likely reason, said when the effect does not show


def pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _scaled_vs_raw(r: dict[str, Run]) -> tuple[bool, str]:
    n = min(len(r["vanilla"].history["epoch"]), len(r["scaled"].history["epoch"]))
    raw, scaled = r["vanilla"].val_at(n), r["scaled"].val_at(n)
    return scaled > raw, (f"After {n} epochs the scaled inputs reach {pct(scaled)} test accuracy, "
                          f"raw pixels {pct(raw)}.")


def _inverted(r: dict[str, Run]) -> tuple[bool, str]:
    n = len(r["inverted"].history["epoch"])
    inv = [r["inverted"].val_at(e) for e in range(1, n + 1)]
    normal = [r["scaled"].val_at(e) for e in range(1, n + 1)]
    behind = sum(a < b for a, b in zip(inv, normal, strict=True))
    holds = inv[-1] < normal[-1] and behind > n / 2
    return holds, (f"Over the first {n} epochs the inverted images trail the normal ones in "
                   f"{behind} of {n} epochs; after {n}: {pct(inv[-1])} vs {pct(normal[-1])}.")


def _batch(r: dict[str, Run]) -> tuple[bool, str]:
    big = r["batch-30000"]
    n = min(len(big.history["epoch"]), len(r["scaled"].history["epoch"]))
    a, b = big.val_at(n), r["scaled"].val_at(n)
    return a < b, (f"After {n} epochs batch 30000 reaches {pct(a)}, batch 32 {pct(b)} "
                   f"(batch 30000 makes 2 updates an epoch, batch 32 makes 1875).")


def _deep(r: dict[str, Run]) -> tuple[bool, str]:
    deep, one = r["deep"], r["no-dropout"]
    n = min(len(deep.history["epoch"]), len(one.history["epoch"]))
    gap_deep = deep.history["accuracy"][n - 1] - deep.val_at(n)
    gap_one = one.history["accuracy"][n - 1] - one.val_at(n)
    holds = deep.val_at(n) >= one.val_at(n) - 0.001
    return holds, (f"After {n} epochs at batch 1024: three hidden layers {pct(deep.val_at(n))} "
                   f"(train/test gap {pct(gap_deep)}), one hidden layer {pct(one.val_at(n))} "
                   f"(gap {pct(gap_one)}).")


def _lr(r: dict[str, Run]) -> tuple[bool, str]:
    finals = {k: r[k].history["val_accuracy"][-1] for k in ("lr-0.001", "lr-0.01", "lr-0.1")}
    holds = finals["lr-0.1"] < finals["lr-0.001"] - 0.05
    errors = {k: 1 - v for k, v in finals.items()}
    ratio = errors["lr-0.1"] / errors["lr-0.001"] if errors["lr-0.001"] else float("inf")
    return holds, ("Final test accuracy: " + ", ".join(f"learning rate {k[3:]}: {pct(v)}"
                                                       for k, v in finals.items())
                   + f"; at 0.1 the net makes {ratio:.1f} times as many test errors as at 0.001.")


def _sgd(r: dict[str, Run]) -> tuple[bool, str]:
    n = min(len(r["sgd"].history["epoch"]), len(r["scaled"].history["epoch"]))
    first = [e for e in (1, 5, n) if e <= n]
    parts = ", ".join(f"epoch {e}: SGD {pct(r['sgd'].val_at(e))} vs Adam "
                      f"{pct(r['scaled'].val_at(e))}" for e in first)
    holds = all(r["sgd"].val_at(e) <= r["scaled"].val_at(e) for e in first)
    return holds, f"At batch 32 — {parts}."


def _overfit(r: dict[str, Run]) -> tuple[bool, str]:
    short, long = r["overfit-5"], r["overfit-100"]
    gaps = {k: v.gap for k, v in r.items()}
    holds = gaps["overfit-100"] > gaps["overfit-5"]
    spread = (f"weight std {short.kernel()['std']:.4f} vs {long.kernel()['std']:.4f}; "
              f"|w| > 0.2: {pct(short.kernel()['fraction_beyond_0_2'])} vs "
              f"{pct(long.kernel()['fraction_beyond_0_2'])}")
    return holds, (f"5 epochs: train {pct(short.metrics['train_accuracy'])} / test "
                   f"{pct(short.metrics['test_accuracy'])}; {len(long.history['epoch'])} epochs: "
                   f"train {pct(long.metrics['train_accuracy'])} / test "
                   f"{pct(long.metrics['test_accuracy'])}. The gap grows from "
                   f"{pct(gaps['overfit-5'])} to {pct(gaps['overfit-100'])}; hidden layer {spread}.")


def _l2(r: dict[str, Run]) -> tuple[bool, str]:
    l2, plain = r["l2"], r["no-dropout"]
    holds = l2.kernel()["std"] < plain.kernel()["std"]
    gap_l2, gap_plain = l2.gap, plain.gap
    return holds, (f"Hidden-layer weight std: L2(0.1) {l2.kernel()['std']:.4f} vs none "
                   f"{plain.kernel()['std']:.4f}; train/test gap {pct(gap_l2)} vs {pct(gap_plain)}; "
                   f"test accuracy {pct(l2.metrics['test_accuracy'])} vs "
                   f"{pct(plain.metrics['test_accuracy'])}.")


def _dropout(r: dict[str, Run]) -> tuple[bool, str]:
    drop, plain = r["dropout"], r["no-dropout"]
    gap_drop, gap_plain = drop.gap, plain.gap
    beyond = (drop.kernel()["fraction_beyond_0_2"], plain.kernel()["fraction_beyond_0_2"])
    holds = gap_drop < gap_plain
    spread = ("" if beyond[0] < beyond[1] else
              " The weight-spread part does not show: with dropout more hidden weights lie beyond "
              "±0.2. Keras's Dropout scales the kept activations by 1/(1-0.75) = 4 while training, "
              "and each weight is updated on only a quarter of the steps, so its histogram "
              "need not narrow; the chapter's figure may come from a different scaling.")
    return holds, (f"Train/test gap with dropout {pct(gap_drop)}, without {pct(gap_plain)}; "
                   f"hidden weights beyond ±0.2: {pct(beyond[0])} vs {pct(beyond[1])}; test "
                   f"accuracy {pct(drop.metrics['test_accuracy'])} vs "
                   f"{pct(plain.metrics['test_accuracy'])}.{spread}")


def _batchnorm(r: dict[str, Run]) -> tuple[bool, str]:
    bn, l2 = r["batchnorm"], r["l2-0.01"]
    n = min(len(bn.history["epoch"]), len(l2.history["epoch"]))
    return bn.val_at(n) > l2.val_at(n), (
        f"After {n} epochs with L2(0.01): batch normalisation {pct(bn.val_at(n))}, "
        f"without {pct(l2.val_at(n))}.")


COMPARISONS = [
    Comparison("Raw vs scaled pixels", ["vanilla", "scaled"],
               "scaling gives smooth curves and ~98.25% against ~97% with a steppy loss",
               _scaled_vs_raw),
    Comparison("Normal vs inverted images", ["scaled", "inverted"],
               "inverted images learn more slowly: ~97% vs ~98% after 10 epochs", _inverted),
    Comparison("Batch 32 vs batch 30000", ["scaled", "batch-30000"],
               "batch 30000 reaches ~98% only much later", _batch),
    Comparison("One hidden layer vs three", ["no-dropout", "deep"],
               "three layers reach ~98.6% with a large train/test gap", _deep,
               if_not="Our budget is 30 epochs against the chapter's 250: at batch 1024 both nets "
                      "are still within a few tenths of a point of each other (seed noise is of "
                      "that size), so the deeper net's advantage has not appeared yet; its gap is "
                      "the larger one, as the chapter says."),
    Comparison("Adam learning rates: 0.001 vs 0.01 vs 0.1", ["lr-0.001", "lr-0.01", "lr-0.1"],
               "~90% and steppy at 0.01; 0.1 gets stuck", _lr,
               if_not="The order holds (0.001 > 0.01 > 0.1) but 0.1 does not get stuck here: with "
                      "Keras 3's Adam (epsilon 1e-7), Glorot initialisation and seed 42 the run "
                      "recovers from its first unstable epochs. The chapter's collapse depends on "
                      "the initial steps diverging into dead ReLUs, which is seed- and "
                      "version-dependent; our criterion (5 points below 0.001) is not reached."),
    Comparison("Adam vs SGD", ["scaled", "sgd"], "SGD gets to ~98% but more slowly", _sgd),
    Comparison("5 vs 100 epochs (overfitting)", ["overfit-5", "overfit-100"],
               "97.59/97.1 vs 100/98.28 train/test; wider weight spread at 100", _overfit,
               weights=True),
    Comparison("No regularisation vs L2", ["no-dropout", "l2"],
               "L2 pulls the weights to zero and shrinks the train/test gap", _l2, weights=True),
    Comparison("No dropout vs dropout", ["no-dropout", "dropout"],
               "dropout shrinks the gap; fewer weights beyond ±0.2", _dropout, weights=True),
    Comparison("L2 without vs with batch normalisation", ["l2-0.01", "batchnorm"],
               "~97% with batch normalisation vs ~91% without", _batchnorm),
]


class Service:
    def __init__(self, base_url: str, api_key: str | None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url, headers=headers, timeout=60)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params=params)
        response.raise_for_status()
        return response.json() if "json" in response.headers["content-type"] else response.content

    def submit(self, recipe: str, epochs: int) -> str:
        response = self.http.post("/experiments", json={
            "recipe": recipe, "overrides": {"training": {"epochs": epochs}}})
        response.raise_for_status()
        return response.json()["id"]


def existing(service: Service, recipes: list[str]) -> dict[str, Run]:
    """The newest succeeded run of each recipe already on the service (no training)."""
    runs = {}
    for recipe in recipes:
        found = service.get("/experiments", recipe=recipe, status="succeeded", limit=1)["items"]
        if not found:
            raise SystemExit(f"no succeeded run of {recipe} on the service")
        run = Run(recipe, found[0]["id"], found[0]["epochs"], status="succeeded",
                  experiment=found[0])
        run.history = service.get(f"/experiments/{run.id}/history")
        run.weights = service.get(f"/experiments/{run.id}/weights")
        runs[recipe] = run
    return runs


def run_all(service: Service, recipes: list[str], scale: float) -> dict[str, Run]:
    runs = {}
    for recipe in recipes:
        epochs = max(1, round(BUDGETS[recipe] * scale))
        runs[recipe] = Run(recipe, service.submit(recipe, epochs), epochs)
        print(f"queued {recipe:<13} {epochs:>4} epochs  {runs[recipe].id}", flush=True)
    pending = set(recipes)
    while pending:
        time.sleep(2)
        for recipe in sorted(pending):
            run = runs[recipe]
            run.experiment = service.get(f"/experiments/{run.id}")
            if run.experiment["status"] in TERMINAL:
                pending.discard(recipe)
                run.status = run.experiment["status"]
                run.history = service.get(f"/experiments/{run.id}/history")
                if run.status == "succeeded":
                    run.weights = service.get(f"/experiments/{run.id}/weights")
                acc = (run.metrics or {}).get("test_accuracy")
                print(f"{run.status:<9} {recipe:<13} test accuracy "
                      f"{pct(acc) if acc is not None else '-'}", flush=True)
    return runs


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def total_minutes(runs: dict[str, Run]) -> float:
    """From the first submission to the last run's end, as the service recorded them."""
    start = min(datetime.fromisoformat(r.experiment["created_at"]) for r in runs.values())
    end = max(datetime.fromisoformat(r.experiment["finished_at"]) for r in runs.values())
    return (end - start).total_seconds() / 60


def write_report(service: Service, runs: dict[str, Run], out: Path) -> None:
    figures = out.parent / "results"
    figures.mkdir(parents=True, exist_ok=True)
    catalogue = {r["name"]: r for r in service.get("/recipes")}
    lines = [
        "# Reproducing the chapter",
        "",
        f"Written by `bench/reproduce.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC against the "
        f"one-command service (`mnistlab serve`, one worker) on {platform.node()} "
        f"({platform.processor() or platform.machine()}, Python {platform.python_version()}). "
        f"All runs: seed 42, full MNIST (60k train, validation on the 10k test set). "
        f"Wall time from the first submission to the last result: {total_minutes(runs):.1f} "
        "minutes.",
        "",
        "Epoch budgets: the chapter trains for up to 500 epochs, hours per run on this 2-core CPU; "
        "each recipe here gets the budget in the table, chosen to show its effect.",
        "",
        "| recipe | what it shows | epochs (chapter) | train acc | test acc | chapter reports "
        "| wall time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in runs.items():
        recipe = catalogue[name]
        m = run.metrics
        chapter_epochs = recipe["spec"]["training"]["epochs"]
        lines.append(
            f"| {name} | {recipe['title']} | {len(run.history.get('epoch', []))} "
            f"({chapter_epochs}) | {pct(m['train_accuracy']) if m else run.status} | "
            f"{pct(m['test_accuracy']) if m else run.status} | {recipe['chapter_reports']} | "
            f"{run.wall_seconds:.0f} s |")
    lines += ["", "Train accuracy is measured after training, on the whole training set in "
              "inference mode (no dropout); test accuracy on the 10k test set.", ""]
    held = []
    for comparison in COMPARISONS:
        members = {k: runs[k] for k in comparison.recipes if k in runs}
        if len(members) < len(comparison.recipes) or any(
                r.status != "succeeded" for r in members.values()):
            continue
        ids = ",".join(r.id for r in members.values())
        name = slug(comparison.title)
        for metric in ("val_accuracy", "loss"):
            png = service.get("/compare/plot.png", ids=ids, metric=metric)
            (figures / f"{name}-{metric}.png").write_bytes(png)
        holds, figures_text = comparison.verdict(members)
        held.append((comparison.title, holds))
        why = "" if holds or not comparison.if_not else f" {comparison.if_not}"
        lines += [f"## {comparison.title}", "",
                  f"Chapter: {comparison.chapter}. **Effect {'holds' if holds else 'does not hold'}"
                  f" here.** {figures_text}{why}", "",
                  f"![test accuracy](results/{name}-val_accuracy.png)",
                  f"![training loss](results/{name}-loss.png)", ""]
        if comparison.weights:
            for recipe, run in members.items():
                png = service.get(f"/experiments/{run.id}/plots/weights.png")
                (figures / f"weights-{recipe}.png").write_bytes(png)
                lines.append(f"![weights of {recipe}](results/weights-{recipe}.png)")
            lines.append("")
    lines += ["## Summary of effects", "", "| comparison | effect holds |", "|---|---|"]
    lines += [f"| {title} | {'yes' if ok else 'no'} |" for title, ok in held]
    out.write_text("\n".join(lines) + "\n" + NOTES)


NOTES = """
## Where our figures differ from the chapter's, and why

- **Epochs.** Every run is shorter than the chapter's (see the table): figures that the chapter
  reports after 100-500 epochs are compared here after the budget shown. Accuracy differences of a
  few tenths of a point at the top end mostly come from this.
- **Adam's default learning rate.** The chapter calls it 0.0001; Keras's default is 0.001, which
  the recipes use (`lr-0.001` is the baseline for the learning-rate comparison).
- **Train accuracy.** The chapter reads it from the training history (averaged over an epoch,
  with dropout active); ours is measured after training on the whole training set in inference
  mode, so it is a little higher, most visibly with dropout.
- **Randomness.** One seed per recipe (42); the chapter's runs had their own initialisation and
  shuffling, so differences of a few tenths of a point are noise.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--recipes", default=",".join(BUDGETS),
                        help="comma-separated subset of the catalogue")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every epoch budget")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "RESULTS.md")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: rebuild the report from the newest succeeded run "
                             "of each recipe on the service")
    args = parser.parse_args()
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in BUDGETS]
    if unknown:
        parser.error(f"unknown recipes: {', '.join(unknown)}")
    service = Service(args.base_url, args.api_key)
    started = time.time()
    runs = existing(service, recipes) if args.report_only else run_all(service, recipes, args.scale)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_report(service, runs, args.out)
    print(f"wrote {args.out} in {(time.time() - started) / 60:.1f} minutes")
    print(json.dumps({k: r.status for k, r in runs.items()}))
    return 0 if all(r.status == "succeeded" for r in runs.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
