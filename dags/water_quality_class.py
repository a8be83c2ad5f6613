"""GB 3838-2002 water-quality class → `water_quality.hourly_classes`, `water_quality.daily_classes`.

Derived from `water_quality.samples` and `water_quality.stations`: runs whenever a run changed either of them (their
Assets), never on a clock. Each run reads the inputs' change logs after the positions it stored, recomputes the
classes of the hours that changed and of every station-day they lie in (all of a station's when its record
changed), and publishes them in one transaction that also moves the positions. Only valid values (flag N or S)
take part; a day averages one value per measurement cycle; each row says whether its station meets its target.

Rerunning any task is harmless: with no new input changes publish writes nothing, events keep their ids and
snapshots are keyed by sequence number. Inputs, outputs and owner: `waterhub/derived.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import derived_dag

derived_dag("water_quality_class", __doc__)
