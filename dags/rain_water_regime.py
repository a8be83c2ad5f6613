"""Rain and water regime (雨水情) → `hydrology.station_rainfall`, `hydrology.district_rainfall`,
`hydrology.water_regime`.

Derived from the SL 323 rainfall, river and reservoir readings, thresholds and stations: runs whenever a run
changed one of them (their Assets), never on a clock. Rainfall windows (1, 3, 6, 24 h) end at the latest rainfall
observation published, so reruns and backfills read the same; each river or reservoir station whose readings or
thresholds changed gets its latest level, trend and margin to the warning level (WRZ, or the period's FSLTDZ).

Rerunning any task is harmless: with no new input changes publish writes nothing. Rules:
`waterhub/derivations/rain_water_regime.py`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import derived_dag

derived_dag("rain_water_regime", __doc__)
