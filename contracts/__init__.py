"""Data contracts: versioned pydantic models with metadata, the single source of truth for every schema."""

from contracts.base import Classification, Contract, ContractMeta, Factor, FieldSpec, FieldType, Reference, schema_id
from contracts.errors import ContractError, IncompatibleChangeError, UnknownContractError
from contracts.registry import all_contracts, breaking_changes, check_compatible, get_contract, register

__all__ = [
    "Classification",
    "Contract",
    "ContractError",
    "ContractMeta",
    "Factor",
    "FieldSpec",
    "FieldType",
    "IncompatibleChangeError",
    "Reference",
    "UnknownContractError",
    "all_contracts",
    "breaking_changes",
    "check_compatible",
    "get_contract",
    "register",
    "schema_id",
]
