"""Rules of the river-chief datasets beyond their contracts (REFERENCE 6.2, 6.3)."""

from __future__ import annotations

from quality.coercion import EncodedBatch, EncodedColumn, encode_values
from quality.domain import DomainRule, domain_rule
from quality.suite import Check, DerivedColumn

__all__: list[str] = []


def _patrol_minutes(batch: EncodedBatch) -> EncodedColumn:
    """Minutes from a patrol's start to its end; null where either time is missing."""
    span = batch.columns["ended_at"].rows() - batch.columns["started_at"].rows()
    return encode_values(span.dt.total_seconds() / 60)


@domain_rule("river_chief.patrols")
def _patrols() -> DomainRule:
    """A patrol ends after it starts: a track that ends first is a device clock or a draft filled in wrongly, and
    its length and duration mean nothing. (How long a valid patrol must last is per-city practice, not checked.)"""
    return DomainRule(
        "patrols",
        checks=(
            Check(
                "patrol_ends_before_it_starts",
                "between",
                "_patrol_minutes",
                {"min_value": 0},
                "ended_at",
                "a patrol's end cannot come before its start",
            ),
        ),
        derived=(DerivedColumn("_patrol_minutes", _patrol_minutes),),
    )
