"""Rural sewage facility inspection system → `rural_sewage.facilities`, `rural_sewage.inspections`,
`rural_sewage.effluent_samples`.

Hourly. The facility register is read whole; inspections (with the running status found) and effluent samples are
read by `updated_at` from their watermarks, so a lab's re-analysis replaces the earlier reading. Failing records go
to quarantine with their reasons. Schedule, owner and datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("rural_sewage", __doc__)
