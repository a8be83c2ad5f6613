"""No record can stop a run: hostile values in every field of every contract of every source, end to end.

Hypothesis draws records for each stream of each registered source (``waterhub/sources.toml``): mostly
plausible values from the stream contract's own field specs, with some fields replaced by anything JSON can carry
(control characters, U+2028, lone surrogates, NUL, huge and tiny numbers, NaN tokens, deep nesting, times in odd
zones or out of range, lists and objects) and unknown extra fields. A test feed serves them over a real socket in
the source's envelope, and the real pipeline extracts, validates and publishes them; each example draws the source
it feeds, since each costs a whole pipeline run. Every record must end up published or quarantined, and nothing
else may be raised. A new source joins by registering; a stream whose raw
records are not keyed by contract field names registers its shape in ``RAW_SHAPES``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData, func, select

from connectors.errors import SourceDataError
from connectors.http import HttpStream
from connectors.hydrology.streams import HYDROLOGY_STREAMS
from contracts import Contract, FieldSpec
from contracts.water_quality import FACTOR_CODES
from exchange.db import make_engine
from exchange.tables import dataset_table, quarantine
from tests.feed import Feed, as_read, matches
from waterhub.pipeline import Pipeline
from waterhub.settings import HttpClientSettings, Settings
from waterhub.sources import build_source, declared_sources

RUN_END = datetime(2026, 11, 24, tzinfo=UTC)
PAGE_SIZE = 4


def _streams(source: str) -> tuple[HttpStream, ...]:
    return build_source(source, Settings()).streams


_Draw = Callable[[st.SearchStrategy[Any]], Any]

_ODD_TEXT = st.one_of(
    st.text(max_size=12),
    st.text(alphabet=st.characters(codec=None, categories=["Cc", "Cs", "Zl", "Zp", "Zs"]), max_size=6),
    st.sampled_from(["", " ", "\x00", "\ud800", "a\udfffb", "\u2028", "x\x85y", "NaN", "-Infinity", "1e400", "-0"]),
)
_NUMBERS = st.one_of(
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64, 10**4000, 5e-324, -0.0, 1.7976931348623157e308]),
    st.floats(allow_nan=True, allow_infinity=True),
)
"""NaN and infinity go out as the bare tokens ``NaN`` and ``Infinity``, as some sources send them."""
_ODD_TIMES = st.one_of(
    st.builds(
        lambda moment, offset: moment.replace(tzinfo=timezone(offset)).isoformat(),
        st.datetimes(),
        st.timedeltas(min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)),
    ),
    st.datetimes().map(lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S")),
    st.sampled_from(
        ["9999-12-31T23:00:00-12:00", "0001-01-01T00:00:00+14:00", "0001-01-01 00:00:00", "2036-01-01 00:00:00"]
    ),
)
_DEEP = st.integers(min_value=100, max_value=500).map(lambda depth: _nested(depth))
_JSON = st.recursive(
    st.none() | st.booleans() | _NUMBERS | _ODD_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_ODD_TEXT, inner, max_size=3),
    max_leaves=6,
)
_HOSTILE = st.one_of(_ODD_TEXT, _NUMBERS, _ODD_TIMES, _JSON, _DEEP)
_PLAIN_HOURS = st.datetimes(min_value=datetime(2026, 11, 1), max_value=datetime(2026, 11, 20)).map(  # noqa: DTZ001
    lambda moment: moment.strftime("%Y-%m-%d %H:00:00")
)
"""Times as the sources in this domain send them (Beijing time, no offset), on the hour so hourly rules can pass."""


def _nested(depth: int) -> object:
    value: object = 7.2
    for level in range(depth):
        value = [value] if level % 2 else {"value": value}
    return value


def _plausible(spec: FieldSpec, pools: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    """A value the contract takes, so that records with few hostile fields can be published (times: ``_record``)."""
    strategy: st.SearchStrategy[Any]
    if spec.allowed is not None:
        strategy = st.sampled_from(spec.allowed)
    elif spec.type in ("number", "integer"):
        low = spec.minimum if spec.exclusive_minimum is None else spec.exclusive_minimum
        high = spec.maximum if spec.exclusive_maximum is None else spec.exclusive_maximum
        strategy = st.floats(
            min_value=-1e6 if low is None else low,
            max_value=1e6 if high is None else high,
            exclude_min=spec.exclusive_minimum is not None,
            exclude_max=spec.exclusive_maximum is not None,
        )
        strategy = strategy.map(round) if spec.type == "integer" else strategy
    elif spec.type == "boolean":
        strategy = st.booleans()
    elif spec.name in pools:  # a key that other records, and other streams, refer to
        strategy = st.sampled_from(pools[spec.name])
    else:
        strategy = st.text(alphabet="abcdefgh 珠江猎德", min_size=spec.min_length or 0, max_size=spec.max_length or 12)
        strategy = strategy.filter(lambda text: text.strip() == text and len(text) >= (spec.min_length or 0))
    return strategy | st.none() if spec.nullable else strategy


def _by_field_name(draw: _Draw, row: dict[str, object], contract: type[Contract]) -> dict[str, object]:
    return row


def _bureau_sample(draw: _Draw, row: dict[str, object], contract: type[Contract]) -> dict[str, object]:
    """The bureau's sample: each factor as ``{"value", "flag", "unit"}`` under its HJ 212 code, read back into
    contract fields by ``WaterQualitySamplesStream.post_process``; a few readings are absent, bare or hostile."""
    units = {spec.name: spec.unit for spec in contract.field_specs()}
    odd = draw(_few(list(FACTOR_CODES)))
    factors: dict[str, object] = {}
    for code, field in FACTOR_CODES.items():
        reading = {"value": row.get(field), "flag": row.get(f"{field}_flag"), "unit": units[field]}
        shape = draw(st.sampled_from(["absent", "bare", "hostile", "unit", "flag"])) if code in odd else "reading"
        if shape in ("unit", "flag"):
            reading[shape] = draw(_HOSTILE)
        if shape != "absent":
            factors[code] = {"bare": row.get(field), "hostile": draw(_HOSTILE)}.get(shape, reading)
    raw: dict[str, object] = {name: row[name] for name in ("station_code", "sampled_at", "updated_at") if name in row}
    raw["factors"] = draw(_HOSTILE) if draw(st.integers(0, 9)) == 0 else factors
    return raw


def _sl323_row(draw: _Draw, row: dict[str, object], contract: type[Contract]) -> dict[str, object]:
    """The flood-control platform's row: SL 323 column names in capitals, the version as ``MODITIME``, no
    ``source`` (the connector sets it), read back into contract fields by ``sl323_row``."""
    raw = {name.upper(): value for name, value in row.items() if name not in ("updated_at", "source")}
    if "updated_at" in row:
        raw["MODITIME"] = row["updated_at"]
    return raw


RAW_SHAPES: dict[tuple[str, str], Callable[[_Draw, dict[str, object], type[Contract]], dict[str, object]]] = {
    ("water_quality", "samples"): _bureau_sample,
    **{("hydrology", stream.name): _sl323_row for stream in HYDROLOGY_STREAMS},
}
"""How a stream's source shapes a record whose fields the contract names; by field name unless registered here."""


def _few(names: list[str]) -> st.SearchStrategy[list[str]]:
    """Mostly none or one of ``names``, sometimes a few: a record refused for everything tests little."""
    return st.sampled_from([0, 0, 1, 1, 2, 3]).flatmap(lambda count: st.permutations(names).map(lambda p: p[:count]))


def _record(draw: _Draw, source: str, stream: HttpStream, pools: dict[str, list[str]]) -> dict[str, object]:
    specs = stream.contract.field_specs()
    row = {spec.name: draw(_plausible(spec, pools)) for spec in specs if spec.type != "datetime"}
    times = [spec.name for spec in specs if spec.type == "datetime"]
    hours = sorted(draw(st.lists(_PLAIN_HOURS, min_size=len(times), max_size=len(times), unique=True)))
    row |= dict(zip(times, hours, strict=True))  # later fields later (a sample is reported after its hour)
    for name in draw(_few([spec.name for spec in specs])):
        if draw(st.integers(0, 4)) == 0:
            del row[name]
        else:
            row[name] = draw(_HOSTILE)
    shape = RAW_SHAPES.get((source, stream.name), _by_field_name)
    extras: dict[str, object] = draw(
        st.dictionaries(_ODD_TEXT, _HOSTILE, max_size=2)
    )  # fields the contract does not know
    return extras | shape(draw, row, stream.contract)


def _draw_feed(draw: _Draw, source: str, feed: Feed) -> dict[str, list[object]]:
    """Serve drawn records on every stream of ``source``; returns them per stream as the hub will read them.

    Records are distinct as read, so that each quarantined one is one quarantine row (quarantine keeps equal
    records once) and no page can start with the record the previous one started with (a pagination loop).
    """
    pools: dict[str, list[str]] = {}
    for stream in feed.streams:
        for spec in stream.contract.field_specs():
            if spec.pattern is not None and spec.name not in pools:
                pools[spec.name] = draw(
                    st.lists(st.from_regex(spec.pattern, fullmatch=True), min_size=1, max_size=3, unique=True)
                )
    served: dict[str, list[object]] = {}
    for stream in feed.streams:
        records = [_record(draw, source, stream, pools) for _ in range(draw(st.integers(0, 10)))]
        distinct = {json.dumps(as_read(record), sort_keys=True): record for record in records}
        feed.put(stream.name, list(distinct.values()))
        served[stream.name] = [as_read(record) for record in distinct.values()]
    return served


def _fetched(stream: HttpStream, served: dict[str, list[Any]], streams: tuple[HttpStream, ...]) -> int:
    """How many records of ``stream`` the hub reads: all of them, or for a child stream, those of the contexts its
    parent's records give (a record of no parent's context is never asked for)."""
    if stream.parent is None:
        return len(served[stream.name])
    parent = next(s for s in streams if isinstance(s, stream.parent))
    contexts = {json.dumps(c, sort_keys=True): c for r in served[parent.name] if (c := stream.context(r)) is not None}
    return sum(matches(record, context) for context in contexts.values() for record in served[stream.name])


@pytest.fixture(scope="module")
def feeds() -> Iterator[dict[str, tuple[Feed, str]]]:
    """One feed per registered source, each on its own loopback port."""
    with ExitStack() as stack:
        running = {}
        for source in declared_sources():
            feed = Feed(_streams(source))
            running[source] = (feed, stack.enter_context(feed.serve()))
        yield running


def _pipeline(source: str, base_url: str, database_url: str, data_dir: Path) -> Pipeline:
    block = getattr(Settings(), source)
    updates = {"base_url": base_url} | ({"page_size": PAGE_SIZE} if "page_size" in type(block).model_fields else {})
    hub = Settings(
        data_dir=data_dir,
        database_url=database_url,
        http=HttpClientSettings(max_attempts=1, timeout_s=10),
        **{source: block.model_copy(update=updates)},
    )
    return Pipeline(hub, source)


def _every_record_is_published_or_quarantined(
    data: st.DataObject, feed: Feed, base_url: str, source: str, database_url: str, data_dir: Path
) -> None:
    served = _draw_feed(data.draw, source, feed)
    pipeline = _pipeline(source, base_url, database_url, data_dir)
    try:
        batch_id = pipeline.extract(run_id=f"run-{uuid.uuid4().hex}", interval_end=RUN_END)
        pipeline.validate(batch_id)
        published = pipeline.publish(batch_id)
        streams = pipeline.manifest(batch_id)["streams"]
        with pipeline.engine.connect() as conn:
            for stream in feed.streams:
                entry, key = streams[stream.name], stream.contract.meta.key
                table = dataset_table(stream.contract)
                rows = conn.execute(select(table)).all()  # every published value reads back
                in_quarantine = select(func.count()).select_from(quarantine).where(quarantine.c.dataset == key)
                held = conn.execute(in_quarantine).scalar_one()
                assert entry["fetched"] == _fetched(stream, served, feed.streams)
                assert entry["valid"] + entry["quarantined"] == entry["fetched"]
                assert published[stream.name]["inserted"] == len(rows) == entry["valid"]
                assert held == entry["quarantined"]
    finally:
        pipeline.engine.dispose()


_HYPOTHESIS = settings(
    max_examples=12,  # per source and database: eight sources, each example a whole pipeline run
    # No shrinking: each example runs the whole pipeline, so shrinking a failure takes longer than the test may
    # run; the failing draws are printed whole.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


SOURCES = list(declared_sources())
"""One test per source and database, so each source's examples have a time budget of their own."""
_BUDGET = pytest.mark.timeout(900)
"""An example runs the whole pipeline on every stream of its source (seven for the flood-control platform): on a
shared CI machine twenty of them outlast the default 300 s."""


@_BUDGET
@pytest.mark.parametrize("source", SOURCES)
@_HYPOTHESIS
@given(data=st.data())
def test_every_hostile_record_is_published_or_quarantined_on_sqlite(
    data: st.DataObject, source: str, feeds: dict[str, tuple[Feed, str]], tmp_path: Path
) -> None:
    run_dir = tmp_path / uuid.uuid4().hex  # a fresh hub for each example
    feed, base_url = feeds[source]
    _every_record_is_published_or_quarantined(data, feed, base_url, source, f"sqlite:///{run_dir / 'hub.db'}", run_dir)


@_BUDGET
@pytest.mark.parametrize("source", SOURCES)
@_HYPOTHESIS
@given(data=st.data())
def test_every_hostile_record_is_published_or_quarantined_on_postgresql(
    data: st.DataObject, source: str, feeds: dict[str, tuple[Feed, str]], tmp_path: Path, pg_schema_url: str
) -> None:
    engine = make_engine(pg_schema_url)
    everything = MetaData()
    everything.reflect(engine)  # the migrations' own version table and the contract tables included
    everything.drop_all(engine)  # a fresh hub for each example
    engine.dispose()
    feed, base_url = feeds[source]
    _every_record_is_published_or_quarantined(data, feed, base_url, source, pg_schema_url, tmp_path / uuid.uuid4().hex)


def test_a_page_nested_deeper_than_the_recursion_limit_is_a_data_error(
    feeds: dict[str, tuple[Feed, str]], tmp_path: Path
) -> None:
    source = next(iter(declared_sources()))
    feed, base_url = feeds[source]
    stream = feed.streams[0]
    feed.put_body(stream.name, b'{"code": 0, "data": {"items": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}}")
    pipeline = _pipeline(source, base_url, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    try:
        with pytest.raises(SourceDataError, match=rf"{source}/{stream.name}: .* nested deeper than"):
            pipeline.extract(run_id="run-deep", interval_end=RUN_END)
    finally:
        feed.put(stream.name, [])
        pipeline.engine.dispose()
