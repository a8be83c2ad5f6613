"""Drainage facility inspection system → `drainage.facilities`, `drainage.facility_inspections`, `drainage.defects`.

Hourly. The facility register is read whole (a facility it no longer lists is deleted); inspections and defects are
read by `updated_at` from their watermarks, so a defect's later handling steps and late corrections come back, and
a deleted record comes as a tombstone. Records whose facility is unknown, or that fail their contract, go to
quarantine with their reasons; inspections carry the standard address code they link to. Schedule, owner and
datasets: `waterhub/sources.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import source_dag

source_dag("drainage_facilities", __doc__)
