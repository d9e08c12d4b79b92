"""Settings of the regression service, read once from NBOPS_* environment variables.

Generated from regression.ipynb by nbops 0.1.0; edit the notebook, not this file.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent  # the build folder
MANIFEST = ROOT / "nbops.json"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(BaseSettings):
    """NBOPS_API_KEY, NBOPS_MAX_BODY_BYTES, NBOPS_MAX_BATCH_ITEMS, NBOPS_LOG_LEVEL,
    NBOPS_ARTIFACTS_DIR, NBOPS_MANIFEST, and the monitoring's: NBOPS_MONITORING,
    NBOPS_MONITOR_WINDOW, NBOPS_MONITOR_WINDOW_SECONDS, NBOPS_MONITOR_MIN_REQUESTS,
    NBOPS_MONITOR_INTERVAL_SECONDS, NBOPS_MAX_DRIFT."""

    model_config = SettingsConfigDict(env_prefix="NBOPS_", extra="ignore")

    # When set, every route but /healthz, /readyz and /metrics wants it in an X-API-Key header.
    api_key: SecretStr | None = None
    # A request body larger than this is refused with 413 before it is read whole.
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    # A batch of more requests than this is refused with 413 before any of them is checked.
    max_batch_items: int = Field(default=1000, gt=0)
    log_level: LogLevel = "INFO"
    # The artifact store the serve functions' values are loaded from (its layout: ab/abc....fmt).
    artifacts_dir: Path = ROOT / "artifacts"
    # The build's manifest: the artifacts' hashes, and the lineage /version shows.
    manifest: Path = MANIFEST
    # false: no window is kept and /monitoring says monitoring is off.
    monitoring: bool = True
    # Each serve route's window holds its last this many requests, none older than this.
    monitor_window: int = Field(default=1000, gt=0)
    monitor_window_seconds: float = Field(default=900.0, gt=0)
    # Scores are null until the window holds this many requests (answered ones, for drift).
    monitor_min_requests: int = Field(default=100, ge=1)
    # /metrics and /monitoring work the scores out again at most this often.
    monitor_interval_seconds: float = Field(default=2.0, ge=0)
    # A field whose PSI against the reference is above this is flagged.
    max_drift: float = Field(default=0.25, gt=0)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # `NBOPS_API_KEY=` in a shell or a compose file means no key, not an empty one.
        return None if value == "" else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value
