"""The bureau's two streams: station master data and hourly samples (STYLE sketch A).

Both answer in the bureau's envelope ``{"code": 0, "message": "ok", "data": {"items": [...], "page": n,
"page_size": m, "total": N}}``; a page whose ``code`` is not 0 is an error even with status 200.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.http import CursorParam, PageNumberPaginator
from connectors.http.envelope import CodeEnvelopeStream
from contracts.water_quality import FACTOR_CODES, WaterQualitySample, WaterQualityStation

__all__ = ["WaterQualitySamplesStream", "WaterQualityStationsStream"]


class WaterQualityStationsStream(CodeEnvelopeStream):
    """Station master data: a few hundred rows that rarely change, so read in full every run.

    The contract has an ``updated_at`` cursor field, but reading all stations each run costs one or two pages and
    means a station the bureau deletes and re-adds is never missed.
    """

    name = "stations"
    contract = WaterQualityStation
    path = "/api/v1/stations"
    paginator = PageNumberPaginator(size=500)


class WaterQualitySamplesStream(CodeEnvelopeStream):
    """Hourly samples. The bureau re-sends corrected hours with a later ``updated_at``, so we follow update time,
    not sample time: a correction of last week's sample is read by the next run."""

    name = "samples"
    contract = WaterQualitySample
    path = "/api/v1/samples"
    paginator = PageNumberPaginator(size=500)
    cursor = CursorParam(field="updated_at", param="updated_since")

    def post_process(self, raw: Mapping[str, object]) -> dict[str, object]:
        """Flatten ``factors`` (keyed by HJ 212 code) into contract fields: ``ph``, ``ph_flag``, ``ph_unit``, ...

        Quirk: the bureau nests each reading as ``{"value", "flag", "unit"}`` under its HJ 212 code. The unit is
        kept as ``<field>_unit`` (not a contract field) so quality can refuse a reading sent in another unit
        instead of publishing µg/L as mg/L. A factor a station does not measure is absent: every column is None.
        Values are passed on untouched, including the string ``"NaN"``, so quality quarantines them with a reason.
        Times stay the bureau's strings; the contract's ``BeijingTime`` owns the zone rule.
        """
        row: dict[str, object] = {
            "station_code": raw.get("station_code"),
            "sampled_at": raw.get("sampled_at"),
            "updated_at": raw.get("updated_at"),
        }
        factors = raw.get("factors")
        readings: Mapping[str, object] = factors if isinstance(factors, Mapping) else {}
        for code, field in FACTOR_CODES.items():
            reading = readings.get(code)
            if isinstance(reading, Mapping):
                value, flag, unit = reading.get("value"), reading.get("flag"), reading.get("unit")
            else:  # absent (None), or a bare value without flag and unit: quality judges it
                value, flag, unit = reading, None, None
            row[field] = value
            row[f"{field}_flag"] = flag
            row[f"{field}_unit"] = unit
        return row
