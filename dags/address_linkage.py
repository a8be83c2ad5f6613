"""Address linkage → `addresses.record_links`, `addresses.match_rates`.

Derived from the standard addresses (`addresses.standard_addresses`) and every inspection dataset that carries a
standard address code (drainage facilities and households, rural sewage facilities, and their inspections): runs
whenever a run changed one of them (their Assets), never on a clock. Each run relinks the records that changed and
the records at addresses that changed, deletes the links of records deleted upstream, and counts each touched
dataset's match rate again. Unmatched records stay in the linkage as `unmatched` with a `review_reason`: that is
the review queue.

Rerunning any task is harmless: with no new input changes publish writes nothing. Inputs, outputs and owner:
`waterhub/derived.toml`.
"""

# An Airflow DAG (the dag processor only parses files that name both words) built from the shared builder.
from _source_dag import derived_dag

derived_dag("address_linkage", __doc__)
