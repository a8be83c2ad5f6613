"""What every source's HTTP client is configured with, and the rule every source's secrets follow.

The models live with the code that uses them; ``waterhub.settings.Settings`` composes them into the one object that
reads the environment (``WATERHUB_HTTP__*``), so nothing here reads it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["PLACEHOLDER_SECRETS", "HttpClientSettings", "check_secret"]

PLACEHOLDER_SECRETS = frozenset({"changeme", "change-me", "secret", "password", "xxx"})


def check_secret(value: SecretStr, variable: str) -> SecretStr:
    """Refuse at start-up what would otherwise fail later and loudly: a secret left at a template's placeholder
    would be sent to a real system, and one with whitespace (a key read from a file with its trailing newline) is
    refused by the HTTP layer with the value in the exception text, where a traceback or a debug log shows it.

    Stray whitespace is refused, not stripped: a stripped key would work here and fail wherever the same file is
    read without stripping, and the operator would never learn why. The message names the variable, never the value.
    """
    secret = value.get_secret_value()
    if secret.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"the secret is a placeholder; set {variable} to the real one")
    if any(char.isspace() or not char.isprintable() for char in secret):
        raise ValueError(
            f"{variable} contains whitespace or a control character (a trailing newline from a file?); "
            "remove it: the value is used exactly as given"
        )
    return value


class HttpClientSettings(BaseModel):
    """How the shared HTTP client treats every source: timeouts and a bounded retry budget."""

    model_config = ConfigDict(frozen=True)

    timeout_s: float = Field(10.0, gt=0, description="Timeout of one HTTP request to a source")
    max_attempts: int = Field(5, ge=1, le=20, description="Attempts per request before the run fails")
    max_retry_time_s: float = Field(120.0, gt=0, description="Total time one request may spend retrying")
    max_retry_after_s: float = Field(
        60.0, ge=0, description="Longest Retry-After hint honoured; a longer one fails the run at once"
    )
    backoff_initial_s: float = Field(0.5, ge=0, description="First backoff wait; doubles per attempt, with jitter")
    backoff_max_s: float = Field(30.0, ge=0, description="Longest backoff wait between two attempts")
