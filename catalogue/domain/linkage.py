"""Cross-provider de-duplication (docs/federation.md, "Distinct subjects across providers").

Providers that agree on a federation key compute, at harvest, each subject's HyperLogLog
contribution under that key: a register number and a rank taken from a keyed BLAKE2b hash of the
subject's patient identifier. The index keeps only that contribution (`linkage`: register << 6 |
rank), never the hash. A feasibility question that asks for distinct subjects collects, per
provider, the HyperLogLog registers of its matching subjects: the largest rank per register. The
registers of several providers merge by taking the largest rank per register, and the union's
size is estimated with HyperLogLog++ (datasketch). A register array holds no pseudonym: only how
many leading zeros the most extreme hash seen in each register had.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

PRECISION = 14
"""log2 of the number of registers (HyperLogLog++'s usual 16,384)."""
REGISTERS = 1 << PRECISION
MAX_RANK = 64 - PRECISION + 1
RANK_BITS = 6
"""A linkage code is register << RANK_BITS | rank (rank 1..MAX_RANK fits in six bits)."""

STANDARD_ERROR = 1.04 / math.sqrt(REGISTERS)
"""The relative standard error of a HyperLogLog estimate with REGISTERS registers."""
ERROR_BOUND = 3 * STANDARD_ERROR
"""The stated relative error of an estimate: three standard errors (about 99.7%)."""


class Linkage:
    """A subject's linkage code under one federation key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a federation key needs at least 16 bytes")
        self._key = hashlib.blake2b(b"linkage:" + key, digest_size=64).digest()
        self.key_id = key_id(key)

    def hash(self, patient: str) -> int:
        """The keyed 64-bit hash of a patient identifier (unsigned); never stored."""
        digest = hashlib.blake2b(patient.encode(), key=self._key, digest_size=8).digest()
        return int.from_bytes(digest, "big")

    def __call__(self, patient: str) -> int:
        return code_of(self.hash(patient))


def key_id(key: bytes) -> str:
    """A public name of a federation key: equal names, same key (the key is not derivable)."""
    return hmac.new(key, b"federation-key-id", hashlib.sha256).hexdigest()[:12]


def code_of(hashed: int) -> int:
    """The HyperLogLog contribution of a 64-bit hash, as HyperLogLog++ takes it: the register is
    its low PRECISION bits, the rank the position of the highest set bit of the rest, counted
    from the top (1: the top bit is set; MAX_RANK: none is)."""
    register = hashed & (REGISTERS - 1)
    rest = hashed >> PRECISION
    rank = (64 - PRECISION) - rest.bit_length() + 1
    return register << RANK_BITS | rank


@dataclass(frozen=True)
class HllSketch:
    """HyperLogLog registers of one set of subjects (REGISTERS bytes, each a rank or 0)."""

    registers: bytes

    def __post_init__(self) -> None:
        if len(self.registers) != REGISTERS:
            raise ValueError(f"a sketch has {REGISTERS} registers, not {len(self.registers)}")
        if max(self.registers, default=0) > MAX_RANK:
            raise ValueError(f"a register holds a rank of at most {MAX_RANK}")

    @classmethod
    def empty(cls) -> HllSketch:
        return cls(bytes(REGISTERS))

    @classmethod
    def from_ranks(cls, ranks: Iterable[tuple[int, int]]) -> HllSketch:
        """From (register, largest rank) pairs; registers not named are 0."""
        out = bytearray(REGISTERS)
        for register, rank in ranks:
            out[register] = max(out[register], rank)
        return cls(bytes(out))

    def merged(self, other: HllSketch) -> HllSketch:
        """The sketch of the union of both sets."""
        return HllSketch(
            bytes(max(a, b) for a, b in zip(self.registers, other.registers, strict=True))
        )

    @property
    def empty_set(self) -> bool:
        return not any(self.registers)

    def estimate(self) -> float:
        """The HyperLogLog++ estimate of the set's size (datasketch)."""
        if self.empty_set:
            return 0.0
        import numpy as np  # datasketch's; imported on first use (it pulls in scipy)
        from datasketch import HyperLogLogPlusPlus

        registers = np.frombuffer(self.registers, dtype=np.uint8).astype(np.int8)
        return float(HyperLogLogPlusPlus(reg=registers).count())

    def encode(self) -> str:
        """Compressed and base64-encoded, as it travels from a node to the hub."""
        return base64.b64encode(zlib.compress(self.registers, 9)).decode("ascii")

    @classmethod
    def decode(cls, text: str) -> HllSketch:
        """The inverse of `encode`; ValueError for anything else."""
        try:
            packed = base64.b64decode(text.encode("ascii"), validate=True)
            inflater = zlib.decompressobj()
            registers = inflater.decompress(packed, REGISTERS + 1)
        except (ValueError, zlib.error) as exc:
            raise ValueError(f"not an encoded sketch: {exc}") from exc
        if inflater.unconsumed_tail or len(registers) > REGISTERS:
            raise ValueError("not an encoded sketch: too long")
        if not inflater.eof or inflater.unused_data:
            raise ValueError("not an encoded sketch: not one whole compressed stream")
        return cls(registers)
