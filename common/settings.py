"""All settings in one place, read from environment variables prefixed MNISTLAB_."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator, model_validator
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
    worker_max_memory_mib: int = Field(
        3072, ge=256, le=1024**2,
        description="A worker process whose resident memory passes this when a job ends is "
        "replaced by a fresh one (TensorFlow keeps ~20 MiB for every distinct model a process "
        "has trained; a fresh process starts at ~620 MiB).",
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

    # Leases: a running job's worker beats every heartbeat_seconds; a job whose beat is older
    # than stale_after_seconds is re-queued (attempts left, a live worker) or failed.
    heartbeat_seconds: float = Field(2.0, gt=0, le=600, description="How often a running job "
                                     "renews its lease (and reads cancel requests).")
    cancel_check_seconds: float = Field(0.25, gt=0, le=60, description="How often a running "
                                        "job looks for a cancel request (a read, no write).")
    stale_after_seconds: float = Field(30.0, gt=0, le=86400, description="A running job whose "
                                       "lease is older than this has lost its worker.")
    reap_interval_seconds: float = Field(5.0, gt=0, le=3600, description="How often the API "
                                         "looks for lost and undelivered jobs.")
    requeue_after_seconds: float = Field(60.0, gt=0, le=86400, description="A queued job "
                                         "that the broker has not held for this long is sent again.")
    max_attempts: int = Field(3, ge=1, le=100, description="Runs a job gets before it is failed "
                              "as 'worker lost'.")
    job_time_limit_seconds: float = Field(6 * 3600.0, gt=0, le=30 * 86400, description="A job "
                                          "running longer is failed with 'time limit'.")
    visibility_timeout_seconds: float | None = Field(None, gt=0, description="Redis redelivers "
                                                     "an unacknowledged job after this; default "
                                                     "the hard time limit + 1 h. Must exceed it.")
    api_keys: str = Field("", description="Comma-separated API keys. Empty: no keys needed. "
                          "Set: every route but /health needs 'Authorization: Bearer KEY'.")

    @property
    def hard_time_limit_seconds(self) -> float:
        return self.job_time_limit_seconds + 60.0

    @property
    def visibility_timeout(self) -> float:
        return self.visibility_timeout_seconds or self.hard_time_limit_seconds + 3600.0

    @property
    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]

    @model_validator(mode="after")
    def _check_timeouts(self) -> Settings:
        # Redis would hand a still-running job to a second worker once this passes.
        if self.visibility_timeout <= self.hard_time_limit_seconds:
            raise ValueError(
                f"visibility_timeout_seconds ({self.visibility_timeout:g}) must exceed the hard "
                f"time limit ({self.hard_time_limit_seconds:g} = job_time_limit_seconds + 60)")
        if self.stale_after_seconds <= 2 * self.heartbeat_seconds:
            raise ValueError("stale_after_seconds must exceed twice heartbeat_seconds")
        return self

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
