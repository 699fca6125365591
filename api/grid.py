"""Expand a sweep's grid over dotted spec paths into one validated spec per point."""

from __future__ import annotations

import copy
import itertools
from typing import Any

from pydantic import ValidationError

from trainer.spec import ExperimentSpec


class GridError(ValueError):
    def __init__(self, loc: tuple[str | int, ...], msg: str) -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg


def set_path(spec: dict[str, Any], path: str, value: Any) -> None:
    """Set spec[a][b][0][c] for "a.b.0.c". Switching optimizer.name starts from its defaults."""
    parts = path.split(".")
    if parts == ["optimizer", "name"]:
        learning_rate = spec.get("optimizer", {}).get("learning_rate")
        spec["optimizer"] = {"name": value}
        if learning_rate is not None:
            spec["optimizer"]["learning_rate"] = learning_rate
        return
    node: Any = spec
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and isinstance(node.get(part), dict | list):
            node = node[part]
        elif isinstance(node, dict) and part in node and node[part] is None:
            node[part] = {}
            node = node[part]
        else:
            raise GridError(("grid", path), f"{'.'.join(parts[: i + 1])} is not in the base spec")
    last = parts[-1]
    if isinstance(node, list):
        if not (last.isdigit() and int(last) < len(node)):
            raise GridError(("grid", path), f"{path}: no such list item in the base spec")
        node[int(last)] = value
    else:
        node[last] = value


def expand(base: ExperimentSpec, grid: dict[str, list[Any]]) -> list[tuple[dict, ExperimentSpec]]:
    """Every combination of the grid's values, applied to the base spec and validated."""
    # optimizer.name first: switching optimizer resets its options, set ones must follow.
    keys = sorted(grid, key=lambda k: k != "optimizer.name")
    points = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values, strict=True))
        raw = copy.deepcopy(base.model_dump(mode="json"))
        for path, value in point.items():
            set_path(raw, path, value)
        try:
            points.append((point, ExperimentSpec.model_validate(raw)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise GridError(("grid",), f"point {point}: {where}: {first['msg']}") from None
    return points


def label(point: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())
