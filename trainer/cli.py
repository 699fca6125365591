"""`python -m trainer` / `mnistlab train|recipes|schema`: the trainer alone, no service needed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from trainer.reporting import EpochRecord, Reporter


class ConsoleReporter(Reporter):
    """One line per epoch, so a terminal shows progress as it comes."""

    def on_start(self, *, total_epochs: int, initial_epoch: int) -> None:
        self.total = total_epochs
        print(f"training {total_epochs} epochs", flush=True)

    def on_epoch(self, record: EpochRecord) -> None:
        val = (f"  val_loss {record.val_loss:.4f}  val_accuracy {record.val_accuracy:.4f}"
               if record.val_loss is not None else "")
        print(f"epoch {record.epoch + 1:>4}/{self.total}  loss {record.loss:.4f}  "
              f"accuracy {record.accuracy:.4f}{val}  {record.seconds:.1f}s", flush=True)


def add_commands(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train one experiment and write its artifacts")
    train.add_argument("spec", nargs="?", type=Path, help="experiment spec, JSON")
    train.add_argument("--recipe", help="start from a recipe of the catalogue")
    train.add_argument("--epochs", type=int, help="override training.epochs")
    train.add_argument("--batch-size", type=int, help="override training.batch_size")
    train.add_argument("--max-train-samples", type=int, help="override data.max_train_samples")
    train.add_argument("--out", type=Path, default=None, help="output folder (default runs/NAME)")
    train.set_defaults(func=run_train)
    recipes = sub.add_parser("recipes", help="list the catalogue of the chapter's experiments")
    recipes.add_argument("--json", action="store_true", help="print the full catalogue as JSON")
    recipes.set_defaults(func=run_recipes)
    schema = sub.add_parser("schema", help="print the experiment spec's JSON Schema")
    schema.set_defaults(func=lambda _args: print(json.dumps(_schema(), indent=1)) or 0)


def _schema() -> dict:
    from trainer.spec import json_schema

    return json_schema()


def _overrides(args: argparse.Namespace) -> dict:
    training = {k: v for k, v in {"epochs": args.epochs, "batch_size": args.batch_size}.items()
                if v is not None}
    data = ({"max_train_samples": args.max_train_samples}
            if args.max_train_samples is not None else {})
    return {k: v for k, v in {"training": training, "data": data}.items() if v}


def run_train(args: argparse.Namespace) -> int:
    from trainer.data import DatasetUnavailable
    from trainer.recipes import UnknownRecipe, recipe_spec
    from trainer.spec import ExperimentSpec, deep_merge

    try:
        if args.recipe:
            spec = recipe_spec(args.recipe, _overrides(args))
        elif args.spec:
            raw = json.loads(args.spec.read_text())
            spec = ExperimentSpec.model_validate(deep_merge(raw, _overrides(args)))
        else:
            print("give a SPEC.json or --recipe NAME", file=sys.stderr)
            return 2
    except (ValidationError, UnknownRecipe, OSError, json.JSONDecodeError) as exc:
        print(f"invalid experiment: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / spec.name_slug()
    from trainer.train import train

    try:
        result = train(spec, out, ConsoleReporter())
    except DatasetUnavailable as exc:
        print(str(exc), file=sys.stderr)
        return 1
    ev = result.evaluation
    print(f"test accuracy {ev.test_accuracy:.4f}  train accuracy {ev.train_accuracy:.4f}  "
          f"test loss {ev.test_loss:.4f}  ({result.seconds:.1f}s)")
    print(f"artifacts in {out}/")
    return 0


def run_recipes(args: argparse.Namespace) -> int:
    from trainer.recipes import catalogue

    if args.json:
        print(json.dumps({n: r.model_dump(mode="json") for n, r in catalogue().items()}, indent=1))
        return 0
    for name, recipe in catalogue().items():
        t = recipe.spec.training
        print(f"{name:<13} {t.epochs:>4} epochs, batch {t.batch_size:<6} {recipe.title}")
        print(f"{'':<13} chapter: {recipe.chapter_reports}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer", description=__doc__)
    add_commands(parser.add_subparsers(required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
