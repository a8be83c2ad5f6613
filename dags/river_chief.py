"""Provincial smart river-chief platform → the `river_chief.*` registers, patrols, problems and handling steps.

Hourly and incremental: every stream is read by `updated_at` from its stored watermark with the platform's cursor
tokens, under OAuth2 client credentials fetched again before they expire and on a 401 mid-run. Records the
platform deletes arrive as tombstones and are published as deletes; each problem's handling steps are a partition
of their own. Every record is checked against its contract and the derived quality suite; failing records go to
quarantine with their reasons, the rest are published in one transaction that also moves the watermarks.

After publish, `push_to_province` reports the problems found and handled in the city back up to the platform,
idempotently (see `exchange/province_reports.py`); a report that fails is tried again by the next run.
Schedule, owner and datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("river_chief", __doc__)
