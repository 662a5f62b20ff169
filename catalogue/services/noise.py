"""Deterministic Laplace noise for disclosure control (pure, no I/O).

The noise of a count is a function of a deployment secret, a label (the kind of count) and the
fingerprint of the counted set, so the same set always gets the same noise: asking a question
again, or the same cohort in another form, gives the same answer, which averaging cannot refine.
"""

from __future__ import annotations

import hashlib
import hmac
import math

_BITS = 52  # (u + 0.5) / 2**52 is exact in a double and strictly between 0 and 1


def uniform(secret: bytes, label: str, fingerprint: int) -> float:
    """A uniform number in (0, 1), never 0 or 1, from HMAC-SHA256(secret, label, fingerprint)."""
    message = label.encode() + b"\x00" + (fingerprint & (2**64 - 1)).to_bytes(8, "big")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    u = int.from_bytes(digest[:8], "big") >> (64 - _BITS)
    return (u + 0.5) / (1 << _BITS)


def laplace_noise(secret: bytes, label: str, fingerprint: int, scale: float) -> float:
    """Laplace(0, scale) noise by the inverse CDF of `uniform`; the same inputs, the same noise.

    A fingerprint is taken as 64 bits (signed and unsigned spellings of one value agree)."""
    if scale <= 0:
        raise ValueError("the noise scale must be positive")
    p = uniform(secret, label, fingerprint)
    if p < 0.5:
        return scale * math.log(2 * p)
    return -scale * math.log(2 * (1 - p))
