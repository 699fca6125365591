"""/recipes: the chapter's experiments, and a shortcut to run one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, Response

from api.auth import OwnerDep
from api.deps import SessionDep
from api.routes.experiments import INVALID, resolve_spec, submit, to_out
from api.schemas import ErrorOut, ExperimentOut, RecipeRequest
from trainer.recipes import Recipe, UnknownRecipe, catalogue, get_recipe

router = APIRouter(prefix="/recipes", tags=["recipes"])


@router.get("", response_model=list[Recipe],
            summary="The chapter's experiments: what each shows and the figure it reports")
def list_recipes() -> list[Recipe]:
    return list(catalogue().values())


@router.get("/{name}", response_model=Recipe, responses={404: {"model": ErrorOut}})
def read_recipe(name: str) -> Recipe:
    try:
        return get_recipe(name)
    except UnknownRecipe as exc:
        raise HTTPException(404, str(exc)) from None


@router.post("/{name}/run", status_code=201, response_model=ExperimentOut,
             responses={404: {"model": ErrorOut}, **INVALID},
             summary="Queue a recipe; the body is an optional partial spec merged over it")
def run_recipe(
    name: str,
    session: SessionDep,
    owner: OwnerDep,
    request: Request,
    response: Response,
    overrides: Annotated[dict[str, Any] | None, Body(examples=[{"training": {"epochs": 3}}])] = None,
) -> ExperimentOut:
    read_recipe(name)
    spec, recipe = resolve_spec(RecipeRequest(recipe=name, overrides=overrides or {}))
    experiment = submit(session, request, spec, recipe, owner)
    response.headers["Location"] = f"/experiments/{experiment.id}"
    return to_out(experiment)
