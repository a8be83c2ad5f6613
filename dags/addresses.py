"""Public-security standard address base (四标四实) → `addresses.standard_addresses`, `addresses.buildings`.

Daily. Both are read by `updated_at` from their watermarks; a retired address or building comes as a tombstone and
is deleted. These datasets are what the inspection systems' records link to by standard address code. Schedule,
owner and datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("addresses", __doc__)
