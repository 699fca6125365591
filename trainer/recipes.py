"""The chapter's experiments as a catalogue of named recipes (data in recipes.json)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from pydantic import BaseModel

from trainer.spec import ExperimentSpec, deep_merge


class Recipe(BaseModel):
    name: str
    title: str
    demonstrates: str
    chapter_reports: str
    spec: ExperimentSpec


class UnknownRecipe(KeyError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"unknown recipe {self.name!r}; known: {', '.join(catalogue())}"


@functools.cache
def _raw() -> dict[str, dict[str, Any]]:
    return json.loads(resources.files("trainer").joinpath("recipes.json").read_text())


@functools.cache
def catalogue() -> dict[str, Recipe]:
    return {name: Recipe(name=name, **entry) for name, entry in _raw().items()}


def get_recipe(name: str) -> Recipe:
    try:
        return catalogue()[name]
    except KeyError:
        raise UnknownRecipe(name) from None


def recipe_spec(name: str, overrides: dict[str, Any] | None = None) -> ExperimentSpec:
    """The recipe's spec with a partial spec merged over it (and validated again)."""
    base = get_recipe(name).spec.model_dump(mode="json")
    return ExperimentSpec.model_validate(deep_merge(base, overrides or {}))
