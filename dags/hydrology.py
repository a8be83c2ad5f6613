"""Flood-control hydrology platform (三防水文遥测, SL 323 tables) → `hydrology.stations`, the river and reservoir
thresholds, and `hydrology.rainfall`, `hydrology.river`, `hydrology.reservoir`.

Every five minutes, as stations report, and incremental: each table is read from its `MODITIME` watermark, so the
platform's late corrections of old rows are read by the next run; the newer version of a row wins, whether the
older one came from here or from a device through the gateway (`source` says which). Stations and thresholds are
read before the observations, so quality checks thresholds against the same run's stations. A failed run publishes
nothing and the next one resumes from the last committed watermarks.

Rerunning any task is harmless: publish is an idempotent upsert, the watermark moves only with it, events keep
their ids and snapshots are keyed by sequence number. Schedule, owner and datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("hydrology", __doc__)
