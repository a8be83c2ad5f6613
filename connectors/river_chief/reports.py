"""Sending the city's reports to the provincial platform: one POST per report, with its idempotency key.

The platform keys a report by the ``Idempotency-Key`` header: a resend with the same key and body gets the same
acknowledgement and creates nothing. That makes the shared client's retries safe for these POSTs, even after an
answer lost on the way back. Which reports to send, and what was acknowledged, is ``exchange.province_reports``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Self

from connectors.errors import SourceDataError
from connectors.http.paginators import value_at
from connectors.river_chief.source import REPORTS_PATH, RiverChiefSource

if TYPE_CHECKING:
    from connectors.http.settings import HttpClientSettings
    from connectors.river_chief.settings import RiverChiefSourceSettings

__all__ = ["IDEMPOTENCY_HEADER", "ProvinceReporter"]

IDEMPOTENCY_HEADER = "Idempotency-Key"


class ProvinceReporter:
    """An open connection to the platform for sending reports, with the source's own credentials and retries."""

    def __init__(self, settings: RiverChiefSourceSettings, http: HttpClientSettings) -> None:
        self._session = RiverChiefSource(settings, http).connect()

    def send(self, report: Mapping[str, object], idempotency_key: str) -> str:
        """POST one report; the province's acknowledgement id."""
        body = self._session.client.post_json(
            REPORTS_PATH, report, headers={IDEMPOTENCY_HEADER: idempotency_key}, what="reports"
        )
        ack_id = value_at(body, "data.ack_id")
        if value_at(body, "success") is not True or not isinstance(ack_id, str) or not ack_id:
            raise SourceDataError(
                f"river_chief/reports: POST {REPORTS_PATH} answered without an acknowledgement id; the report stays "
                "unacknowledged and is sent again by the next run.",
                stream="river_chief/reports",
            )
        return ack_id

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
