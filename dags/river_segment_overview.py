"""River-segment overview → `river_chief.segment_overview`, `river_chief.problem_closure_rates`.

Derived from the river-chief platform's segments, chiefs, segment chiefs, patrols and problems: runs whenever a run
changed one of them (their Assets), never on a clock. Each segment's row names its chiefs (name and level), its
latest patrol (time and chief) and its open problems; it is recomputed when anything it shows may have changed.
The closure rate per district and year of report (closed / accepted problems, the indicator the city reports) is
counted again whenever a problem changed.

Rerunning any task is harmless: with no new input changes publish writes nothing. Inputs, outputs and owner:
`waterhub/derived.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import derived_dag

derived_dag("river_segment_overview", __doc__)
