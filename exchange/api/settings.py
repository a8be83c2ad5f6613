"""The consumer API's settings block (``WATERHUB_API__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ApiSettings"]


class ApiSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    default_rows_limit: int = Field(1000, ge=1, description="Rows per page when a request gives no limit")
    max_rows_limit: int = Field(
        1_000_000, ge=1, description="Most rows one page of /rows may ask for; answers are streamed whatever the size"
    )
    max_changes_limit: int = Field(10_000, ge=1, description="Most entries one page of /changes may ask for")
    change_retention_days: float | None = Field(
        None,
        gt=0,
        description="Change-log entries older than this are no longer served (410, restart from a snapshot); "
        "default: all that the log holds",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Worker processes of `waterhub serve api` (`--workers`): one core each; set the host's core count",
    )
    db_connections: int = Field(
        10,
        ge=1,
        le=200,
        description="Database connections each worker of `waterhub serve api` keeps open, opened at its start: "
        "a burst of requests then never waits for new ones",
    )
    stream_chunk_rows: int = Field(
        5000, ge=100, description="Rows fetched from the database per round trip while an answer is streamed"
    )
