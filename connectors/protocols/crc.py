"""The one table behind both protocols' checksums: eight reflected 0xA001 rounds of each byte value.

SL 651 uses CRC-16/MODBUS and HJ 212 its appendix A variant; both shift the same polynomial bit by bit, and the bit
loop cost the gateway more than the rest of decoding, so each takes a byte at a time through this table.
"""

from __future__ import annotations

__all__ = ["A001_TABLE"]


def _eight_rounds(value: int) -> int:
    for _ in range(8):
        value = (value >> 1) ^ 0xA001 if value & 1 else value >> 1
    return value


A001_TABLE: tuple[int, ...] = tuple(_eight_rounds(value) for value in range(256))
