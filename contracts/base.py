"""The contract base: a frozen pydantic model plus metadata, and the neutral field view derivers read.

Every artefact (JSON Schema, SQL table, quality suite) is derived from a contract through ``field_specs()``, so
this package never imports SQLAlchemy or Great Expectations and a schema is never written twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

from contracts.types import is_storable_text

__all__ = [
    "Classification",
    "Contract",
    "ContractMeta",
    "Factor",
    "FieldSpec",
    "FieldType",
    "Reference",
    "schema_id",
]

FieldType = Literal["string", "number", "integer", "boolean", "datetime"]


class Classification(StrEnum):
    """Who may see a dataset (GB/T 35273-style three-level practice used by the city's data office)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    RESTRICTED = "restricted"


@dataclass(frozen=True)
class Reference:
    """A field whose values must exist as keys of another dataset (a foreign key checked by quality)."""

    field: str
    dataset: str
    reason: str


@dataclass(frozen=True)
class ContractMeta:
    """What a consumer needs to know about a dataset besides its fields."""

    key: str
    version: str
    owner: str
    classification: Classification
    primary_key: tuple[str, ...]
    version_field: str
    """What orders versions of one record: a row whose value is older than the stored one is stale, and publish
    never writes it over the stored one. A non-nullable datetime, number or integer field of the contract."""
    title: str = ""
    cursor_field: str | None = None
    references: tuple[Reference, ...] = ()

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])

    @property
    def version_tuple(self) -> tuple[int, int, int]:
        major, minor, patch = (int(part) for part in self.version.split("."))
        return major, minor, patch


@dataclass(frozen=True)
class FieldSpec:
    """One field as every deriver sees it: no pydantic, no SQL, no GX."""

    name: str
    type: FieldType
    nullable: bool
    description: str = ""
    unit: str | None = None
    alias: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: float | None = None
    exclusive_maximum: float | None = None
    allowed: tuple[str, ...] | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    source_zone: str | None = None
    """For a datetime: the zone a source means when it sends a time without an offset (None: refuse such times)."""
    snap_every_s: int | None = None
    """For a datetime: a stamp within ``snap_tolerance_s`` of a multiple of this many seconds is moved onto it
    (an hourly value stamped ``21:00:01`` by a drifting logger clock is the 21:00 value)."""
    snap_tolerance_s: int | None = None
    factor: str | None = None
    """The analyser reading this field belongs to (its value, data flag and status): judged apart from the record."""
    derived: bool = False
    """Filled in by quality, never read from a source (a factor's status)."""
    detection_limit: float | None = None
    """For a factor's value: readings in ``[-detection_limit, 0)`` are below detection, not out of range."""
    earliest: datetime | None = None
    """For a datetime: the earliest plausible value (``x-earliest``); an earlier one is ``<field>_implausible``."""

    @property
    def is_bounded(self) -> bool:
        return any(
            bound is not None for bound in (self.minimum, self.maximum, self.exclusive_minimum, self.exclusive_maximum)
        )


@dataclass(frozen=True)
class Factor:
    """One analyser's reading in a record: its value, its instrument's data flag, and the status quality gives it.

    Station engineers judge validity per analyser, so a factor that fails its checks is withheld on its own and the
    rest of the record is still published.
    """

    name: str
    value: FieldSpec
    flag: FieldSpec | None
    status: FieldSpec

    @property
    def fields(self) -> tuple[str, ...]:
        """The fields a source sends for this factor (the status is the hub's)."""
        return (self.value.name,) + ((self.flag.name,) if self.flag is not None else ())


class Contract(BaseModel):
    """Base of every dataset contract: frozen, strict about NaN and infinity, fields by name or source alias."""

    model_config = ConfigDict(
        frozen=True,
        allow_inf_nan=False,
        validate_by_name=True,
        validate_by_alias=True,
        extra="ignore",
        str_strip_whitespace=True,
    )

    meta: ClassVar[ContractMeta]

    @model_validator(mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, data: Any) -> Any:
        """JSON ``true`` is no reading: pydantic's lax mode would take it as 1.0, and a hash table as 1. Checked once
        per record on the raw input (by field name or alias), not by a validator on every field."""
        if isinstance(data, Mapping):
            for name in _number_keys(cls):
                if isinstance(data.get(name), bool):
                    raise ValueError(f"{name}: a boolean is not a number")
        return data

    @model_validator(mode="after")
    def _storable_and_plausible(self, info: ValidationInfo) -> Self:
        """Refuse text no database stores, and times that cannot be true: before the field's floor, or after the
        ``not_after`` a caller passes as validation context (the end of a run's interval plus
        ``contracts.types.CLOCK_TOLERANCE``; the model alone cannot know the run). The vectorised suite refuses the
        same values, as ``<field>_bad_text`` and ``<field>_implausible``. One check per record, not per field: a
        validator on every field doubles the model's cost."""
        texts, floors = _checked_fields(type(self))
        for name in texts:
            text = getattr(self, name)
            if text is not None and not is_storable_text(text):
                raise ValueError(f"{name}: text holding NUL or a lone surrogate cannot be stored")
        context = info.context if isinstance(info.context, Mapping) else {}
        not_after = context.get("not_after")
        for name, earliest in floors.items():
            time = getattr(self, name)
            if time is None or time.tzinfo is None:
                continue
            if earliest is not None and time < earliest:
                raise ValueError(
                    f"{name}: {time.isoformat()} is before the earliest plausible time, {earliest.isoformat()}"
                )
            if isinstance(not_after, datetime) and time > not_after:
                raise ValueError(
                    f"{name}: {time.isoformat()} is after the latest plausible time, {not_after.isoformat()}"
                )
        return self

    @classmethod
    def field_specs(cls) -> tuple[FieldSpec, ...]:
        """The neutral view of the fields, read off the model's own JSON Schema so both always agree."""
        return _field_specs(cls)

    @classmethod
    def factors(cls) -> tuple[Factor, ...]:
        """The contract's factors, in field order: fields sharing an ``x-factor`` name, one of them derived (the
        status) and one named as the factor (the value)."""
        groups: dict[str, list[FieldSpec]] = {}
        for spec in cls.field_specs():
            if spec.factor is not None:
                groups.setdefault(spec.factor, []).append(spec)
        factors = []
        for name, specs in groups.items():
            by_name = {spec.name: spec for spec in specs}
            statuses = [spec for spec in specs if spec.derived]
            flags = [spec for spec in specs if not spec.derived and spec.name != name]
            if name not in by_name or len(statuses) != 1 or len(flags) > 1:
                raise TypeError(
                    f"{cls.meta.key}: factor {name} needs a value field {name}, one status, at most one flag"
                )
            factors.append(Factor(name, by_name[name], flags[0] if flags else None, statuses[0]))
        return tuple(factors)

    @classmethod
    def field_spec(cls, name: str) -> FieldSpec:
        for spec in cls.field_specs():
            if spec.name == name:
                return spec
        raise KeyError(f"{cls.meta.key} has no field {name!r}")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The published JSON Schema: the model's schema plus the contract metadata consumers need."""
        schema = cls.model_json_schema(by_alias=False, mode="serialization")
        meta = cls.meta
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = schema_id(meta.key, meta.version)
        schema["title"] = meta.title or cls.__name__
        schema["x-waterhub"] = {
            "key": meta.key,
            "version": meta.version,
            "owner": meta.owner,
            "classification": meta.classification.value,
            "primary_key": list(meta.primary_key),
            "version_field": meta.version_field,
            "cursor_field": meta.cursor_field,
            "references": [
                {"field": ref.field, "dataset": ref.dataset, "reason": ref.reason} for ref in meta.references
            ],
        }
        return schema


@cache
def _field_specs(contract: type[Contract]) -> tuple[FieldSpec, ...]:
    """Cached per class: a class's schema never changes, and building it costs milliseconds, which the gateway
    would otherwise pay several times for every micro-batch."""
    schema = contract.model_json_schema(by_alias=False, mode="validation")
    definitions: dict[str, Any] = schema.get("$defs", {})
    specs = []
    for name, prop in schema["properties"].items():
        info = contract.model_fields[name]
        specs.append(_spec_from_property(name, prop, definitions, info.alias))
    return tuple(specs)


@cache
def _number_keys(contract: type[Contract]) -> frozenset[str]:
    """The names and aliases a number field may arrive under."""
    return frozenset(
        key
        for spec in contract.field_specs()
        if spec.type in ("number", "integer")
        for key in (spec.name, spec.alias)
        if key is not None
    )


@cache
def _checked_fields(contract: type[Contract]) -> tuple[tuple[str, ...], dict[str, datetime | None]]:
    """The text fields whose values are free (a fixed set holds no NUL), and each time field's floor, read once per
    contract off its field specs (the one owner of ``x-earliest``)."""
    specs = contract.field_specs()
    texts = tuple(spec.name for spec in specs if spec.type == "string" and spec.allowed is None)
    return texts, {spec.name: spec.earliest for spec in specs if spec.type == "datetime"}


def schema_id(key: str, version: str) -> str:
    """The stable URI a CloudEvent's ``dataschema`` points at."""
    return f"urn:waterhub:contract:{key}:{version}"


_JSON_TYPES: dict[str, FieldType] = {
    "string": "string",
    "number": "number",
    "integer": "integer",
    "boolean": "boolean",
}


def _spec_from_property(name: str, prop: dict[str, Any], definitions: dict[str, Any], alias: str | None) -> FieldSpec:
    variants = prop.get("anyOf", [prop])
    nullable = any(variant.get("type") == "null" for variant in variants)
    (body,) = [variant for variant in variants if variant.get("type") != "null"]
    if "$ref" in body:
        body = definitions[body["$ref"].rsplit("/", 1)[-1]]
    if "const" in body:
        body = {**body, "enum": [body["const"]]}
    json_type = body.get("type", "string")
    field_type: FieldType = "datetime" if body.get("format") == "date-time" else _JSON_TYPES[json_type]
    allowed = tuple(str(value) for value in body["enum"]) if "enum" in body else None
    snap: dict[str, int] = prop.get("x-snap", body.get("x-snap", {}))
    return FieldSpec(
        name=name,
        type=field_type,
        nullable=nullable,
        description=prop.get("description", body.get("description", "")),
        unit=prop.get("unit"),
        alias=alias,
        minimum=body.get("minimum"),
        maximum=body.get("maximum"),
        exclusive_minimum=body.get("exclusiveMinimum"),
        exclusive_maximum=body.get("exclusiveMaximum"),
        allowed=allowed,
        pattern=body.get("pattern"),
        min_length=body.get("minLength"),
        max_length=body.get("maxLength"),
        source_zone=prop.get("x-source-zone", body.get("x-source-zone")),
        snap_every_s=snap.get("every_s"),
        snap_tolerance_s=snap.get("tolerance_s"),
        factor=prop.get("x-factor"),
        derived=bool(prop.get("x-derived", False)),
        detection_limit=prop.get("x-detection-limit"),
        earliest=_time_or_none(prop.get("x-earliest", body.get("x-earliest"))),
    )


def _time_or_none(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)
