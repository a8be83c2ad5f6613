"""The hub's tables: bookkeeping tables, and one table per contract major version derived from its fields.

This module is the one source of both. The bookkeeping tables live on ``metadata`` and change through Alembic
revisions (``exchange/migrations``), which a test holds to ``metadata``; contract tables are derived from the
registered contracts and reconciled with the database by ``exchange.schema`` (see ``ensure_schema``).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.types import TypeEngine

from contracts import Contract, FieldSpec
from exchange.db import UtcDateTime

__all__ = [
    "CHANGED_EVENT_TYPE",
    "HASH_COLUMN",
    "RUN_COLUMN",
    "SEQ_COLUMN",
    "STALE_EVENT_TYPE",
    "batches",
    "change_log",
    "dataset_table",
    "dataset_table_name",
    "datasets",
    "deliveries",
    "departments",
    "derived_state",
    "devices",
    "ensure_schema",
    "grants",
    "metadata",
    "outbox",
    "province_reports",
    "published_keys",
    "quarantine",
    "read_audit",
    "snapshots",
    "stream_state",
    "subscriptions",
    "tokens",
    "validation_runs",
    "withheld",
]

metadata = MetaData()

CHANGED_EVENT_TYPE = "org.waterhub.dataset.changed.v1"
"""A change event's CloudEvents ``type``; the type names the payload's shape (a breaking change gets ``.v2``)."""
STALE_EVENT_TYPE = "org.waterhub.dataset.stale.v1"
"""A freshness alert: the dataset's source has not published within its expected interval."""

HASH_COLUMN = "_hash"
SEQ_COLUMN = "_seq"
RUN_COLUMN = "_run_id"

datasets = Table(
    "datasets",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("contract_version", String(20), nullable=False),
    Column("table_name", String(120), nullable=False),
    Column("last_seq", BigInteger, nullable=False, default=0),
    Column("row_count", BigInteger, nullable=False, default=0),
    Column("last_published_at", UtcDateTime),
    Column("last_run_id", String(250)),
    Column(
        "epoch",
        String(32),
        nullable=False,
        comment="Random, set when the row is created: a hub rebuilt from scratch numbers its changes from 1 again, "
        "and its event ids must still differ from the old hub's",
    ),
    comment="One row per published dataset; its row is locked while a publish assigns sequence numbers.",
)

change_log = Table(
    "change_log",
    metadata,
    Column("dataset", String(100), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("key", Text, nullable=False, comment="Primary key of the changed row as a JSON array"),
    Column("op", String(6), nullable=False, comment="insert, update or delete"),
    Column("contract_version", String(20), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("changed_at", UtcDateTime, nullable=False),
    # The consumer API's change feed reads deletes from the log (their rows are gone); a partial index keeps that
    # read cheap without weighing on the inserts and updates that make up the log.
    Index(
        "ix_change_log_deletes",
        "dataset",
        "seq",
        postgresql_where=text("op = 'delete'"),
        sqlite_where=text("op = 'delete'"),
    ),
    comment="Append-only: one entry per real change, sequence monotonic per dataset.",
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("dataset", String(100), nullable=False),
    Column("contract_version", String(20), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("first_seq", BigInteger, nullable=False),
    Column("last_seq", BigInteger, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("deleted", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("dispatched_at", UtcDateTime),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column(
        "event_type",
        String(60),
        nullable=False,
        default=CHANGED_EVENT_TYPE,
        server_default=CHANGED_EVENT_TYPE,
        comment="CloudEvents type: a change (the sequence range) or a freshness alert (stale: see detail)",
    ),
    Column("detail", Text, comment="JSON of what an event other than a change says (a stale source's last run)"),
    Index("ix_outbox_pending", "dispatched_at", "id"),
    comment="Written in the publish transaction; notifications are sent from here after commit.",
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(100), nullable=False),
    Column("payload_hash", String(64), nullable=False),
    Column("reasons", Text, nullable=False, comment="JSON array of stable reason codes"),
    Column("payload", Text, nullable=False, comment="The raw record as received, JSON"),
    Column("contract_version", String(20), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("batch_id", String(120), nullable=False),
    Column("quarantined_at", UtcDateTime, nullable=False),
    UniqueConstraint("dataset", "payload_hash", name="uq_quarantine_payload"),
    comment="Records that failed validation, kept whole so they can be replayed.",
)

withheld = Table(
    "withheld",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(100), nullable=False),
    Column("key", Text, nullable=False, comment="Primary key of the published row as a JSON array"),
    Column("factor", String(100), nullable=False),
    Column("reasons", Text, nullable=False, comment="JSON array of stable reason codes"),
    Column("raw", Text, nullable=False, comment="The factor's fields as received (value, flag, unit), JSON"),
    Column("raw_hash", String(64), nullable=False),
    Column("contract_version", String(20), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("batch_id", String(120), nullable=False),
    Column("withheld_at", UtcDateTime, nullable=False),
    UniqueConstraint("dataset", "key", "factor", "raw_hash", name="uq_withheld_value"),
    comment="Factor values published as null (status rejected or below_detection), kept as sent for review.",
)

validation_runs = Table(
    "validation_runs",
    metadata,
    Column("batch_id", String(120), primary_key=True),
    Column("dataset", String(100), primary_key=True),
    Column("run_id", String(250), nullable=False),
    Column("contract_version", String(20), nullable=False),
    Column("rows", Integer, nullable=False),
    Column("valid", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("results", Text, nullable=False, comment="JSON: unexpected count per expectation"),
    Column("validated_at", UtcDateTime, nullable=False),
)

stream_state = Table(
    "stream_state",
    metadata,
    Column("source", String(100), primary_key=True),
    Column("stream", String(100), primary_key=True),
    Column(
        "partition_key",
        String(500),
        primary_key=True,
        default="",
        server_default="",
        comment="The partition's context as compact JSON (one station, one parent record); '' when unpartitioned",
    ),
    Column("cursor_value", UtcDateTime, nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Incremental watermark per stream and partition; advanced only in the publish transaction.",
)

derived_state = Table(
    "derived_state",
    metadata,
    Column("derivation", String(100), primary_key=True, comment="The derived dataset's name in waterhub/derived.toml"),
    Column("input_dataset", String(100), primary_key=True),
    Column("last_seq", BigInteger, nullable=False, comment="The input's change-log sequence derived up to"),
    Column("run_id", String(250), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="Per derivation and input, how far its change log was read; advanced only in the derived publish.",
)

province_reports = Table(
    "province_reports",
    metadata,
    Column("dataset", String(100), primary_key=True),
    Column("record_key", String(500), primary_key=True, comment="Primary key of the reported row as a JSON array"),
    Column("content_hash", String(64), nullable=False, comment="sha256 of the report last sent for the row"),
    Column("idempotency_key", String(64), nullable=False, comment="Sent with the report: a resend is not a new one"),
    Column("ack_id", String(100), comment="The province's acknowledgement of that report; null until it arrives"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("acknowledged_at", UtcDateTime),
    Column("updated_at", UtcDateTime, nullable=False),
    comment="One row per record reported up to the provincial platform: what was sent and what the province said.",
)

schema_fingerprint = Table(
    "schema_fingerprint",
    metadata,
    Column("fingerprint", String(64), primary_key=True),
    comment="One row: the digest of the migrations and contract fields the schema was last brought to "
    "(exchange.schema): a process finding it current skips the migration step",
)

batches = Table(
    "batches",
    metadata,
    Column("batch_id", String(120), primary_key=True),
    Column("source", String(100), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("interval_end", UtcDateTime, nullable=False),
    Column("status", String(20), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("manifest", Text, nullable=False, comment="JSON: per stream, staged object keys and counts"),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("dataset", String(100), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("contract_version", String(20), nullable=False, comment="Contract version of the dataset at seq"),
    Column("object_key", Text, nullable=False, comment="Key of the Parquet object in the hub's object store"),
    Column("uri", Text, nullable=False),
    Column("manifest_uri", Text, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("checksum", String(80), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


devices = Table(
    "devices",
    metadata,
    Column("device_id", String(64), primary_key=True, comment="Id in the device's MQTT topic and its broker user"),
    Column("protocol", String(8), nullable=False, comment="sl651, hj212 or json"),
    Column("station_code", String(16), nullable=False, comment="Station its readings are stored under (STCD)"),
    Column("credential_hash", Text, comment="Broker password hash (Mosquitto PBKDF2-SHA512 form); never the secret"),
    Column("expected_interval_s", Integer, nullable=False, comment="How often the device should report"),
    Column("last_seen_at", UtcDateTime, comment="When the gateway last committed a message from it"),
    Column(
        "registered_at",
        UtcDateTime,
        comment="When it was registered: a device never heard from goes offline twice its interval after this",
    ),
    Column("state", String(8), nullable=False, default="online", comment="online, or offline when silent too long"),
    comment="Device registry: a message from a device not listed here is quarantined as unknown.",
)


device_packets = Table(
    "device_packets",
    metadata,
    Column("device_id", String(64), primary_key=True),
    Column("function", Integer, primary_key=True, comment="SL 651 function code of the transfer"),
    Column("total", Integer, primary_key=True, comment="Packets in the transfer"),
    Column("sequence", Integer, primary_key=True, comment="This packet's number, from 1"),
    Column("payload", Text, nullable=False, comment="The packet as received, hex"),
    Column("received_at", UtcDateTime, nullable=False),
    comment="Packets of SL 651 multi-packet transfers waiting for the rest; removed once the transfer is read.",
)


departments = Table(
    "departments",
    metadata,
    Column("code", String(40), primary_key=True, comment="Stable code a token and the audit name it by"),
    Column("name", String(100), nullable=False, comment="The department's official name"),
    Column("created_at", UtcDateTime, nullable=False),
    comment="Departments are the principals of the consumer API: each token belongs to one.",
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_id", String(16), primary_key=True, comment="Public prefix of the token, for lookup and the audit"),
    Column("department", String(40), nullable=False, index=True),
    Column("secret_sha256", String(64), nullable=False, comment="sha256 of the secret part; the token is never kept"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime),
    comment="API tokens, stored only as hashes: a leaked table grants nothing.",
)

grants = Table(
    "grants",
    metadata,
    Column("token_id", String(16), primary_key=True),
    Column("dataset", String(100), primary_key=True),
    Column(
        "row_filter", Text, comment="JSON list of {field, op, values}, all of which a row must meet; null: all rows"
    ),
    comment="Which datasets a token reads, each with an optional row filter; a dataset not listed is invisible.",
)

read_audit = Table(
    "read_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("read_at", UtcDateTime, nullable=False),
    Column("department", String(40), nullable=False),
    Column("token_id", String(16), nullable=False),
    Column("dataset", String(100), nullable=False),
    Column("resource", String(20), nullable=False, comment="rows, changes or snapshot"),
    Column("row_filter", Text, comment="JSON: the grant's filter and the request's own filters"),
    Column("rows", BigInteger, nullable=False, comment="Rows (or change entries) actually sent"),
    Index("ix_read_audit_department", "department", "read_at"),
    comment="One row per data read through the consumer API: who read which dataset, with which filter, how much.",
)

subscriptions = Table(
    "subscriptions",
    metadata,
    Column("subscription_id", String(40), primary_key=True, comment="sub_<hex>: public, named in the API's paths"),
    Column("department", String(40), nullable=False, index=True),
    Column(
        "token_id",
        String(16),
        nullable=False,
        comment="The token it was created with: its grant (and row filter) decides what the subscription is sent",
    ),
    Column("dataset", String(100), nullable=False),
    Column("channel", String(10), nullable=False, comment="webhook (signed CloudEvents) or wecom (group robot)"),
    Column("url", Text, nullable=False, comment="Where deliveries are POSTed; a WeCom robot's address holds its key"),
    Column("secret", String(80), comment="whsec_ signing secret of a webhook; kept to sign, shown once at creation"),
    Column("state", String(10), nullable=False, comment="active, or disabled (410, robot gone, grant revoked)"),
    Column("disabled_reason", Text),
    Column(
        "fed_outbox_id",
        BigInteger,
        nullable=False,
        comment="Last outbox row fanned out to this subscription: it is sent what its dataset publishes after this",
    ),
    Column("created_at", UtcDateTime, nullable=False),
    comment="A department's standing request to be told of a dataset's changes, on one channel.",
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subscription_id", String(40), nullable=False),
    Column("outbox_id", BigInteger, comment="The outbox row it reports; null for a test ping"),
    Column("message_id", String(80), nullable=False, comment="webhook-id: the same on every attempt"),
    Column("kind", String(10), nullable=False, comment="change or ping"),
    Column("body", Text, nullable=False, comment="What is POSTed (CloudEvent JSON), or a WeCom alert's markdown"),
    Column("first_seq", BigInteger),
    Column("last_seq", BigInteger),
    Column("state", String(10), nullable=False, comment="pending, delivered or dead (retries exhausted)"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime, nullable=False, comment="Not tried before; a claimed send leases it"),
    Column("last_attempt_at", UtcDateTime),
    Column("last_status", Integer, comment="HTTP status (or WeCom errcode) of the last attempt"),
    Column("last_error", Text),
    Column("delivered_at", UtcDateTime),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("subscription_id", "message_id", name="uq_deliveries_message"),
    Index("ix_deliveries_queue", "subscription_id", "state", "id"),
    Index("ix_deliveries_due", "state", "next_attempt_at"),
    comment="One row per message per subscriber, fanned out from the outbox: what each subscriber has been sent.",
)


def dataset_table_name(key: str, major: int) -> str:
    """``water_quality.samples`` major 1 → ``ds_water_quality__samples_v1``: majors live side by side."""
    return f"ds_{key.replace('.', '__')}_v{major}"


def _column_type(spec: FieldSpec) -> TypeEngine[Any]:
    if spec.type == "string":
        return String(spec.max_length) if spec.max_length else Text()
    types: dict[str, TypeEngine[Any]] = {
        "number": Float(precision=53),
        "integer": BigInteger(),
        "boolean": Boolean(),
        "datetime": UtcDateTime(),
    }
    return types[spec.type]


@cache
def dataset_table(contract: type[Contract]) -> Table:
    """The table a contract publishes into, built once per contract version on a MetaData of its own.

    Two minors of one major share a database table (``ds_<key>_v<major>``) but not their columns: 1.1.0 may add a
    nullable field that 1.0.0 lacks. Keyed by the table name alone, a process that met 1.0.0 first would publish
    1.1.0 without its new column.
    """
    name = dataset_table_name(contract.meta.key, contract.meta.major)
    primary_key = set(contract.meta.primary_key)
    columns = [
        Column(
            spec.name,
            _column_type(spec),
            primary_key=spec.name in primary_key,
            nullable=spec.nullable and spec.name not in primary_key,
            comment=f"{spec.description} [{spec.unit}]" if spec.unit else spec.description or None,
        )
        for spec in contract.field_specs()
    ]
    return Table(
        name,
        MetaData(),
        *columns,
        Column(HASH_COLUMN, BigInteger, nullable=False, comment="Content hash of the contract fields"),
        Column(SEQ_COLUMN, BigInteger, nullable=False, comment="Change-log sequence of the last change"),
        Column(RUN_COLUMN, String(250), nullable=False, comment="Run that last changed the row"),
        # The consumer API's change feed reads the rows changed after a consumer's sequence, oldest first.
        Index(f"ix_{name}_seq", SEQ_COLUMN),
        comment=f"{contract.meta.key} {contract.meta.version}: {contract.meta.title}",
    )


def ensure_schema(engine: Engine, contracts: Iterable[type[Contract]] | None = None) -> None:
    """Bring the database to the hub's schema: Alembic migrations to head, then a table per contract major with
    every field of its newest minor (``contracts``: the registered ones unless given). Idempotent; see
    ``exchange.schema``, imported here on call so importing the tables does not import Alembic."""
    from exchange.schema import migrate

    migrate(engine, contracts)


def published_keys(conn: Connection) -> str:
    """Every published dataset's key, comma-separated ("none" before the first publish): what an error naming an
    unknown dataset lists."""
    return ", ".join(conn.execute(select(datasets.c.key).order_by(datasets.c.key)).scalars()) or "none"
