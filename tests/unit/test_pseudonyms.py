"""Keyed pseudonyms: stable per key, unlinkable across providers."""

import pytest

from catalogue.domain.identifiers import Pseudonymiser


def test_stable_and_keyed() -> None:
    a = Pseudonymiser.for_provider(b"master-secret-0123456789", "breast")
    b = Pseudonymiser.for_provider(b"master-secret-0123456789", "lung")
    assert a("PATIENT-1") == a("PATIENT-1")
    assert a("PATIENT-1") != a("PATIENT-2")
    assert a("PATIENT-1") != b("PATIENT-1")
    assert -(2**63) <= a("x") < 2**63


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Pseudonymiser(b"short")


def test_no_collisions_in_a_hundred_thousand() -> None:
    p = Pseudonymiser(b"0123456789abcdef0123")
    values = {p(f"1.2.840.{i}") for i in range(100_000)}
    assert len(values) == 100_000
