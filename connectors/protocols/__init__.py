"""Decoders and encoders of what devices send: SL 651-2014 frames, HJ 212 packets and the hub's device JSON.

Only the error tree is re-exported here; import a protocol's module by name (``connectors.protocols.sl651``).
"""

from connectors.protocols.errors import (
    BadBcdDigitError,
    BadFieldError,
    BadFrameError,
    BadLengthError,
    CrcMismatchError,
    DamagedFrameError,
    DecodeError,
    EncryptedCpError,
    MalformedFrameError,
    TruncatedFrameError,
    UnsupportedFrameError,
)

__all__ = [
    "BadBcdDigitError",
    "BadFieldError",
    "BadFrameError",
    "BadLengthError",
    "CrcMismatchError",
    "DamagedFrameError",
    "DecodeError",
    "EncryptedCpError",
    "MalformedFrameError",
    "TruncatedFrameError",
    "UnsupportedFrameError",
]
