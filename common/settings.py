"""All settings in one place, read from environment variables prefixed MNISTLAB_."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MNISTLAB_", extra="ignore")

    home: Path = Field(
        Path("~/.mnistlab"),
        description="Data folder: the SQLite database and artifacts live here unless set apart.",
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite:///HOME/mnistlab.db. "
        "PostgreSQL: postgresql+psycopg://user@host/db",
    )
    artifacts_dir: Path | None = Field(None, description="Models and plots; default HOME/artifacts.")
    data_dir: Path | None = Field(
        None, description="Folder holding mnist.npz and fashion_mnist.npz (the trainer reads "
        "this variable itself); unset: Keras's cache or download.",
    )
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="Celery broker.")
    instance: str = Field(
        "mnistlab",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Names the queue and prefixes every broker key, so two instances can share "
        "one Redis without taking each other's jobs.",
    )
    worker_concurrency: int = Field(1, ge=1, le=64, description="Trainings per worker host.")
    progress_check_seconds: float = Field(
        0.5, gt=0, le=60, description="How often a running job checks for cancellation."
    )
    broker_timeout_seconds: float = Field(
        2.0, gt=0, le=60, description="How long the API waits on the broker before a 503."
    )

    max_request_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, le=1024**3, description="Largest request body (413 above)."
    )
    max_images_per_request: int = Field(
        256, ge=1, le=10000, description="Most images or instances one predict call takes."
    )
    max_sweep_points: int = Field(64, ge=1, le=10000, description="Most experiments one sweep queues.")

    @field_validator("home", "artifacts_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'mnistlab.db'}"

    @property
    def artifacts(self) -> Path:
        return self.artifacts_dir or self.home / "artifacts"

    @property
    def queue(self) -> str:
        return f"{self.instance}.train"

    def experiment_dir(self, experiment_id: str) -> Path:
        return self.artifacts / experiment_id


@functools.cache
def get_settings() -> Settings:
    return Settings()
