"""Why a device frame could not be read, grouped by what the caller should do.

```
DecodeError                  every one: quarantine the raw frame with ``reason``; never retry the decode
├── DamagedFrameError        the bytes were cut or changed on the way: the device's resend will be good
│   ├── TruncatedFrameError  the input ends before the frame does
│   ├── BadLengthError       a length (frame, packet or element) disagrees with the bytes that arrived
│   └── CrcMismatchError     the checksum disagrees with the content
├── MalformedFrameError      it arrived whole but breaks the standard: tell the device's owner
│   ├── BadFrameError        framing: start or end characters, separators, not hex or JSON at all
│   └── BadFieldError        a field's content: impossible date, bad number, missing key, wrong order
│       └── BadBcdDigitError a nibble A-F where SL 651 wants a BCD digit
└── UnsupportedFrameError    valid, but not something we read yet: keep it for replay once we do
    └── EncryptedCpError     an HJ 212-2025 CP encrypted with SM4: reason ``hj212_encrypted_cp``
```

Every error carries ``offset``: the byte (or, in hex and JSON text, the character) where the fault was found, so
``waterhub decode`` and the quarantine row can point at it. Only a JSON value judged after parsing, or JSON nested too
deeply to parse, has no position: its ``offset`` is None and the message names the JSON path instead.

``reason`` is the stable quarantine code ``<protocol>_<kind>`` (``sl651_crc_mismatch``, ``hj212_encrypted_cp``).

There is no ``UnknownElementError``: an SL 651 identifier we do not know still carries its length in its
definition byte, so the reference's checklist keeps it as raw bytes and walks on; an HJ 212 factor code missing from
the registry is one bad *reading*, judged and quarantined per reading downstream, not a reason to reject the packet.
Messages never repeat a whole payload or a password (STYLE rule 15).
"""

from __future__ import annotations

from typing import ClassVar, Literal

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
    "ProtocolName",
    "TruncatedFrameError",
    "UnsupportedFrameError",
]

ProtocolName = Literal["sl651", "hj212", "json"]
"""The protocol segment of a device topic (``waterhub/devices/<protocol>/<device id>/up``)."""


class DecodeError(Exception):
    """Base of every decoder error: ``protocol``, ``offset`` and a message that says what and where."""

    kind: ClassVar[str] = "undecodable"

    def __init__(
        self,
        protocol: ProtocolName,
        what: str,
        *,
        offset: int | None,
        unit: Literal["byte", "character"] = "byte",
    ) -> None:
        self.protocol: ProtocolName = protocol
        self.what = what
        self.offset = offset
        where = "" if offset is None else f" at {unit} {offset}"
        super().__init__(f"{protocol}: {what}{where}")

    @property
    def reason(self) -> str:
        """The quarantine reason code, stable across releases."""
        return f"{self.protocol}_{self.kind}"


class DamagedFrameError(DecodeError):
    """Transmission damage: nothing is wrong with the device, and its next resend will decode."""

    kind = "damaged_frame"


class TruncatedFrameError(DamagedFrameError):
    """The input stops before the frame's own length says it ends."""

    kind = "truncated_frame"


class BadLengthError(DamagedFrameError):
    """A length field and the bytes around it disagree (extra bytes, an element running past its body)."""

    kind = "bad_length"


class CrcMismatchError(DamagedFrameError):
    """The checksum sent does not match the one computed over the content."""

    kind = "crc_mismatch"


class MalformedFrameError(DecodeError):
    """Delivered intact, yet not what the standard allows: resending will not help, fixing the device will."""

    kind = "malformed_frame"


class BadFrameError(MalformedFrameError):
    """The frame's skeleton is wrong: start or end characters, separators, not hex text or not JSON."""

    kind = "bad_frame"


class BadFieldError(MalformedFrameError):
    """One field's content is impossible: a 13th month, a non-number, a missing required key."""

    kind = "bad_field"


class BadBcdDigitError(BadFieldError):
    """A nibble above 9 in a field SL 651 encodes as BCD (address, times, element values)."""

    kind = "bad_bcd_digit"


class UnsupportedFrameError(DecodeError):
    """A legitimate frame in a variant we do not decode yet (SL 651's ASCII encoding); keep it for a replay."""

    kind = "unsupported_frame"


class EncryptedCpError(UnsupportedFrameError):
    """HJ 212-2025 lets a logger SM4-encrypt the CP content; until keys are managed we cannot read (or CRC-check)
    it, since the CRC covers the plaintext."""

    kind = "encrypted_cp"
