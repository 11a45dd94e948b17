"""Canonical JSON bytes (RFC 8785, JSON Canonicalization Scheme).

Every audit event and every signed payload is hashed or signed over these bytes, so two processes (or an
auditor's independent tool) that hold the same data always produce the same bytes.

Deviations from RFC 8785, both deliberate:

- Python ``int`` values are written exactly (``2**64`` stays ``18446744073709551616``) instead of being
  routed through an IEEE double. Ids and counters must never be silently rounded; keep integers inside
  ±2**53 if the bytes must also be reproduced by a JCS implementation that only knows doubles.
- Tuples are accepted as arrays (Python has no other spelling of an immutable array).

Everything else follows the RFC: members sorted by the UTF-16 code units of their names, no whitespace,
UTF-8 output, ECMAScript ``Number.prototype.toString`` for floats, NaN/±Infinity rejected, strings escaped
with the short escapes ``\\b \\t \\n \\f \\r \\" \\\\`` and ``\\u00xx`` (lower-case hex) for the other
control characters, everything else written as itself.
"""

from __future__ import annotations

import math
from json.encoder import (
    encode_basestring as _json_string,  # C-accelerated; escaping matches RFC 8785 §3.2.2.2
)
from typing import Any

__all__ = ["canonical_json", "ecmascript_number"]

MSG_NOT_FINITE = "canonical JSON cannot represent {value!r}: NaN and ±Infinity are not JSON numbers"
MSG_KEY_NOT_STR = "canonical JSON object keys must be str. Got {type} key {key!r} instead."
MSG_UNSUPPORTED = (
    "canonical JSON cannot encode a value of type {type}. "
    "Convert it first (datetimes with modelreg.clock.isoformat, bytes to hex or base64)."
)
MSG_SURROGATE = "canonical JSON strings must be valid Unicode: {where} holds a lone surrogate"
MSG_CYCLE = "canonical JSON cannot encode a self-referencing (or more than ~900 levels deep) container"


def ecmascript_number(value: float) -> str:
    """Format a finite float as ECMAScript ``Number.prototype.toString`` does (ECMA-262 §7.1.12.1).

    ``repr`` already yields the shortest digit string that round-trips (the same digits ECMAScript
    chooses); only the placement of the decimal point and the exponent notation differ.
    """
    if not math.isfinite(value):
        raise ValueError(MSG_NOT_FINITE.format(value=value))
    if value == 0.0:
        return "0"  # also -0.0: RFC 8785 §3.2.2.3 writes minus zero as 0
    if value < 0:
        return "-" + ecmascript_number(-value)
    text = repr(value)
    mantissa, _, exp_text = text.partition("e")
    exponent = int(exp_text) if exp_text else 0
    int_part, _, frac_part = mantissa.partition(".")
    digits = int_part + frac_part
    # n: position of the decimal point relative to the start of ``digits`` (value = 0.digits × 10^n).
    point = len(int_part) + exponent
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    k = len(digits)
    n = point
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * (-n) + digits
    e = n - 1
    sign = "+" if e >= 0 else "-"
    head = digits[0] if k == 1 else digits[0] + "." + digits[1:]
    return f"{head}e{sign}{abs(e)}"


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare exactly like the sequence of UTF-16 code units.
    return name.encode("utf-16-be", "surrogatepass")


def _sorted_keys(obj: dict) -> list[str]:
    for key in obj:
        if type(key) is not str and not isinstance(key, str):
            raise TypeError(MSG_KEY_NOT_STR.format(type=type(key).__name__, key=key))
    # Code-point order equals UTF-16 order unless a key holds characters above U+FFFF (surrogate pairs
    # sort before U+E000..U+FFFF in UTF-16); ASCII keys, by far the common case, skip the re-encoding.
    if all(key.isascii() for key in obj):
        return sorted(obj)
    return sorted(obj, key=_utf16_key)


def _encode(obj: Any) -> str:
    # Exact type checks first (cheap, and the common case); subclasses such as IntEnum, StrEnum or
    # OrderedDict are handled after them. ``bool`` is tested by identity before ``int``.
    t = type(obj)
    if t is str:
        return _json_string(obj)
    if t is dict:
        parts = []
        for key in _sorted_keys(obj):
            value = obj[key]
            tv = type(value)
            # Inlined scalar cases: most members of an audit event are strings or integers.
            if tv is str:
                parts.append(_json_string(key) + ":" + _json_string(value))
            elif tv is int:
                parts.append(_json_string(key) + ":" + int.__repr__(value))
            else:
                parts.append(_json_string(str.__str__(key)) + ":" + _encode(value))
        return "{" + ",".join(parts) + "}"
    if t is int:
        return int.__repr__(obj)
    if t is list or t is tuple:
        return "[" + ",".join([_encode(item) for item in obj]) + "]"
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if t is float:
        return ecmascript_number(obj)
    if isinstance(obj, str):
        return _json_string(str.__str__(obj))
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, float):
        return ecmascript_number(float(obj))
    if isinstance(obj, dict):
        return _encode(dict(obj))
    if isinstance(obj, list | tuple):
        return _encode(list(obj))
    raise TypeError(MSG_UNSUPPORTED.format(type=t.__name__))


def canonical_json(obj: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``obj`` (dict, list/tuple, str, int, float, bool, None).

    Raises ``ValueError`` for NaN/±Infinity, lone surrogates and self-referencing (or absurdly deep)
    containers, ``TypeError`` for any other type (including non-str object keys): nothing is ever coerced
    silently.
    """
    try:
        text = _encode(obj)
    except RecursionError:
        raise ValueError(MSG_CYCLE) from None
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = repr(text[max(exc.start - 20, 0) : exc.end + 20])
        raise ValueError(MSG_SURROGATE.format(where=where)) from None
