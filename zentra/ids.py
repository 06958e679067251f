"""Opaque, time-sortable identifiers with a type prefix (`acct_01J...`).

48 bits of milliseconds followed by 80 random bits, in Crockford base32, so ids sort by
creation time and cursor pagination on the id is stable.
"""

import os
import time
from datetime import datetime

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_id(prefix: str) -> str:
    millis = time.time_ns() // 1_000_000
    randomness = int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{_encode(millis, 10)}{_encode(randomness, 16)}"


def id_floor(prefix: str, instant: datetime) -> str:
    """The smallest id of `prefix` made at or after `instant`: ids sort by time, so a range of
    time is a range of ids (and the primary key's index serves it)."""
    millis = int(instant.timestamp() * 1000)
    return f"{prefix}_{_encode(millis, 10)}{'0' * 16}"
