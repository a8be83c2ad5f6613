"""Water-quality feed of the Ecology and Environment Bureau → `water_quality.stations`, `water_quality.samples`.

Hourly and incremental: samples are read by `updated_at` from the stored watermark, because the bureau re-sends
corrected hours. Every record is checked against its contract and the derived quality suite; failing records go to
quarantine with their reasons, the rest are published in one transaction that also moves the watermark.
Subscribers hear of each real change on `waterhub/datasets/<dataset>/changes`; a Parquet snapshot follows, and
each dataset's Asset gets an event only from a run that changed it.

Rerunning any task is harmless: publish is an idempotent upsert, the watermark moves only with it, events keep
their ids and snapshots are keyed by sequence number. Schedule, owner and datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("water_quality", __doc__)
