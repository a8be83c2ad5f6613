"""Flood-warning alerts → `hydrology.flood_alerts`.

Derived from the SL 323 river and reservoir readings, the river thresholds (WRZ, GRZ), the reservoirs' flood-season
limits (FSLTDZ by period) and the stations: runs whenever a run changed one of them (their Assets), never on a
clock. Each run replays the stations whose readings or thresholds changed, from where their alerts may differ, and
publishes each alert's opening, peak and closing (one hour at or below the threshold) in one transaction that also
moves its positions in the inputs' change logs. An alert opening or closing is a change event like any other, and
reaches WeCom groups through `exchange/webhooks/alert_kinds/flood.py`.

Rerunning any task is harmless: with no new input changes publish writes nothing. Rules: `quality/flood.py`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import derived_dag

derived_dag("flood_warnings", __doc__)
