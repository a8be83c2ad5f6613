"""Drainage household inspection system → `drainage.households`, `drainage.household_inspections`,
`drainage.violations`.

Hourly. The household register (permits, categories, standard addresses) is read whole; inspections and violations
are read by `updated_at` from their watermarks, so rectification and penalties recorded later come back, and a
deleted record comes as a tombstone. Failing records go to quarantine with their reasons. Schedule, owner and
datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("drainage_households", __doc__)
