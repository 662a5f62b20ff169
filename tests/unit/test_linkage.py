"""Cross-provider de-duplication: linkage codes, HyperLogLog sketches, their wire form, the
distinct-subjects estimate and its disclosure, and the `linkage` column of series rows."""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import Iterable

import numpy as np
import pytest
from datasketch import HyperLogLogPlusPlus
from pydantic import SecretStr, ValidationError

from catalogue.config import DisclosureSettings, LinkageSettings, Settings
from catalogue.domain.cohort import CohortQuery
from catalogue.domain.federation import NodeAnswer, NodeRequest, WireSketch, node_request
from catalogue.domain.identifiers import Pseudonymiser
from catalogue.domain.linkage import (
    ERROR_BOUND,
    MAX_RANK,
    PRECISION,
    RANK_BITS,
    REGISTERS,
    HllSketch,
    Linkage,
    code_of,
    key_id,
)
from catalogue.imaging.features import SERIES_SCHEMA, SeriesRows
from catalogue.services.distinct import distinct_subjects

KEY = b"federation-key-0123456789"
LINK = Linkage(KEY)
SECRET = b"deployment-secret-for-noise"


def _names(prefix: str, n: int, start: int = 0) -> list[str]:
    return [f"{prefix}-{i:07d}" for i in range(start, start + n)]


def _sketch(patients: Iterable[str], link: Linkage = LINK) -> HllSketch:
    """A sketch built the way the index builds one: from the subjects' linkage codes."""
    return HllSketch.from_ranks(
        (code >> RANK_BITS, code & ((1 << RANK_BITS) - 1)) for code in map(link, patients)
    )


def _datasketch(patients: Iterable[str], link: Linkage = LINK) -> HyperLogLogPlusPlus:
    """The independent implementation: datasketch's own update with the keyed hash."""
    hll = HyperLogLogPlusPlus(p=PRECISION, hashfunc=link.hash)
    for patient in patients:
        hll.update(patient)
    return hll


# --- codes and registers against datasketch -------------------------------------------------


def test_constants_agree_with_datasketch() -> None:
    hll = HyperLogLogPlusPlus(p=PRECISION)
    assert hll.m == REGISTERS == 16384
    assert hll.max_rank + 1 == MAX_RANK == 51  # rank of a hash whose top 50 bits are all zero
    assert MAX_RANK < 1 << RANK_BITS


@pytest.mark.parametrize(
    ("hashed", "register", "rank"),
    [
        (0, 0, 51),
        (1 << 63, 0, 1),
        ((1 << 64) - 1, REGISTERS - 1, 1),
        (1 << PRECISION, 0, 50),
        ((1 << 62) | 5, 5, 2),
        ((1 << 40) | (REGISTERS - 2), REGISTERS - 2, 64 - 40),
    ],
)
def test_code_of_by_hand(hashed: int, register: int, rank: int) -> None:
    assert code_of(hashed) == register << RANK_BITS | rank


@pytest.mark.parametrize("n", [1, 2, 50, 1000, 5000])
def test_registers_equal_datasketch_update(n: int) -> None:
    patients = _names("ds", n)
    ours = _sketch(patients)
    theirs = _datasketch(patients)
    expected = theirs.reg.astype(np.uint8).tobytes()
    assert ours.registers == expected
    assert sum(1 for r in expected if r) == len({LINK.hash(p) % REGISTERS for p in patients})
    assert ours.estimate() == pytest.approx(float(theirs.count()))


def test_each_code_is_a_one_item_datasketch() -> None:
    for patient in _names("one", 200):
        hll = _datasketch([patient])
        (register,) = np.flatnonzero(hll.reg)
        assert LINK(patient) == int(register) << RANK_BITS | int(hll.reg[register])


def test_from_ranks_keeps_the_largest_rank() -> None:
    sketch = HllSketch.from_ranks([(3, 2), (3, 7), (3, 4), (REGISTERS - 1, MAX_RANK)])
    assert sketch.registers[3] == 7
    assert sketch.registers[REGISTERS - 1] == MAX_RANK
    assert sum(1 for r in sketch.registers if r) == 2
    assert HllSketch.from_ranks([]) == HllSketch.empty()
    assert HllSketch.empty().empty_set and not sketch.empty_set


def test_sketch_refuses_wrong_length_or_rank() -> None:
    with pytest.raises(ValueError, match="registers"):
        HllSketch(bytes(REGISTERS - 1))
    with pytest.raises(ValueError, match="rank"):
        HllSketch.from_ranks([(0, MAX_RANK + 1)])


# --- estimates ------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 10, 1000, 20_000, 150_000])
def test_estimate_within_the_stated_bound(n: int) -> None:
    estimate = _sketch(_names("est", n)).estimate()
    if n == 0:
        assert estimate == 0.0
    else:
        assert abs(estimate - n) <= ERROR_BOUND * n, (n, estimate)


def test_duplicates_do_not_count() -> None:
    patients = _names("dup", 500)
    assert _sketch(patients * 3) == _sketch(patients)


def test_union_of_overlapping_sets() -> None:
    a = _sketch(_names("u", 30_000))
    b = _sketch(_names("u", 30_000, start=20_000))  # shares 20,000..29,999 with a
    union = a.merged(b)
    truth = 50_000
    assert abs(union.estimate() - truth) <= ERROR_BOUND * truth
    assert union == _sketch(_names("u", truth))  # exactly the sketch of the union
    assert union == b.merged(a)
    assert a.merged(a) == a
    assert union.merged(a) == union
    assert a.merged(HllSketch.empty()) == a
    assert union.estimate() > a.estimate() * 1.5  # the overlap is not counted twice


# --- wire form ------------------------------------------------------------------------------


def test_encode_decode_round_trip() -> None:
    for sketch in (HllSketch.empty(), _sketch(_names("rt", 1)), _sketch(_names("rt", 20_000))):
        text = sketch.encode()
        assert re.fullmatch(r"[A-Za-z0-9+/]+=*", text)
        assert HllSketch.decode(text) == sketch
    full = HllSketch(bytes(i % (MAX_RANK + 1) for i in range(REGISTERS)))
    assert HllSketch.decode(full.encode()) == full


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@pytest.mark.parametrize(
    "text",
    [
        "not base64!",
        "QUJD\nREVG",  # base64 with a newline is not the strict alphabet
        "é",
        "",
        _b64(b"plain bytes, not zlib"),
        _b64(zlib.compress(bytes(REGISTERS - 1))),
        _b64(zlib.compress(bytes(REGISTERS + 1))),
        _b64(zlib.compress(bytes(REGISTERS))[:-6]),  # truncated stream
        _b64(zlib.compress(bytes([MAX_RANK + 1]) + bytes(REGISTERS - 1))),
        _b64(zlib.compress(bytes([255]) * REGISTERS)),
    ],
)
def test_decode_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"sketch|registers|rank"):
        HllSketch.decode(text)


def test_decode_does_not_inflate_a_bomb() -> None:
    bomb = _b64(zlib.compress(bytes(10_000_000), 9))
    assert len(bomb) < 20_000
    started = time.perf_counter()
    with pytest.raises(ValueError, match="too long"):
        HllSketch.decode(bomb)
    assert time.perf_counter() - started < 0.5
    with pytest.raises(ValidationError):
        WireSketch(provider="p", key_id=LINK.key_id, registers=bomb)


def test_decode_rejects_trailing_bytes_after_the_stream() -> None:
    sketch = _sketch(_names("tail", 100))
    with pytest.raises(ValueError, match="sketch"):
        HllSketch.decode(_b64(zlib.compress(sketch.registers) + b"trailing"))


# --- the key --------------------------------------------------------------------------------


def test_same_key_same_codes_other_key_other_codes() -> None:
    patients = _names("key", 2000)
    again = Linkage(bytes(KEY))
    other = Linkage(b"another-federation-key!!")
    ours = [LINK(p) for p in patients]
    assert ours == [again(p) for p in patients]
    assert again.key_id == LINK.key_id
    assert other.key_id != LINK.key_id
    same = sum(a == b for a, b in zip(ours, map(other, patients), strict=True))
    assert same < 10  # by chance about 2000 / 16384 / 3
    assert len(set(ours)) > 1800
    for code in ours:
        assert 0 <= code >> RANK_BITS < REGISTERS
        assert 1 <= code & ((1 << RANK_BITS) - 1) <= MAX_RANK
        assert code < 1 << 31  # fits the int32 `linkage` column


def test_key_length() -> None:
    Linkage(b"k" * 16)
    with pytest.raises(ValueError, match="16 bytes"):
        Linkage(b"k" * 15)
    with pytest.raises(ValueError, match="16 bytes"):
        Linkage(b"")


def test_key_id_is_public_and_says_nothing_of_the_key() -> None:
    ident = key_id(KEY)
    assert re.fullmatch(r"[0-9a-f]{12}", ident)
    assert ident == LINK.key_id == key_id(bytes(KEY))
    assert ident != key_id(KEY + b"x")
    assert ident not in KEY.hex() and KEY.hex()[:12] != ident
    assert ident.encode() not in KEY


def test_linkage_settings() -> None:
    with pytest.raises(ValidationError):
        LinkageSettings(key=SecretStr("k" * 15))
    with pytest.raises(ValidationError):
        LinkageSettings.model_validate({"key": "short"})
    settings = LinkageSettings.model_validate({"key": "k" * 16})
    assert settings.key is not None
    assert "k" * 16 not in repr(settings)


def test_settings_linker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CATALOGUE_LINKAGE__KEY", raising=False)
    assert Settings().linker() is None
    linker = Settings.model_validate({"linkage": {"key": KEY.decode()}}).linker()
    assert linker is not None
    assert linker.key_id == LINK.key_id
    assert linker("P-1") == LINK("P-1")
    monkeypatch.setenv("CATALOGUE_LINKAGE__KEY", KEY.decode())
    from_env = Settings().linker()
    assert from_env is not None and from_env("P-2") == LINK("P-2")
    monkeypatch.setenv("CATALOGUE_LINKAGE__KEY", "too-short")
    with pytest.raises(ValidationError):
        Settings()


# --- federation messages --------------------------------------------------------------------


def test_wire_sketch_registers_xor_withheld() -> None:
    sketch = _sketch(_names("wire", 300))
    wire = WireSketch(provider="p", key_id=LINK.key_id, registers=sketch.encode())
    assert wire.sketch() == sketch
    withheld = WireSketch(provider="p", withheld="harvested without a federation key")
    assert withheld.sketch() is None
    with pytest.raises(ValidationError):
        WireSketch(provider="p")
    with pytest.raises(ValidationError):
        WireSketch(provider="p", key_id=LINK.key_id, registers=sketch.encode(), withheld="no")
    with pytest.raises(ValidationError):
        WireSketch(provider="p", registers=sketch.encode())
    with pytest.raises(ValidationError):
        WireSketch(provider="p", key_id=LINK.key_id.upper(), registers=sketch.encode())
    with pytest.raises(ValidationError):
        WireSketch.model_validate(
            {"provider": "p", "key_id": LINK.key_id, "registers": sketch.encode(), "hash": 1}
        )


@pytest.mark.parametrize(
    "registers",
    [
        "not base64!",
        _b64(zlib.compress(bytes(REGISTERS - 1))),
        _b64(zlib.compress(bytes([MAX_RANK + 1]) * REGISTERS)),
        _b64(b"x" * 100),
    ],
)
def test_wire_sketch_refuses_malformed_registers(registers: str) -> None:
    with pytest.raises(ValidationError):
        WireSketch(provider="p", key_id=LINK.key_id, registers=registers)
    with pytest.raises(ValidationError):
        WireSketch.model_validate_json(
            json.dumps({"provider": "p", "key_id": LINK.key_id, "registers": registers})
        )


def test_node_answer_body_has_sketches_only_when_asked() -> None:
    plain = NodeAnswer(disclosure="exact", providers=[], datasets=[])
    assert "sketches" not in json.loads(plain.body())
    empty = NodeAnswer(disclosure="exact", providers=[], datasets=[], sketches=[])
    assert json.loads(empty.body())["sketches"] == []
    sketch = _sketch(_names("body", 40))
    wire = WireSketch(provider="p", key_id=LINK.key_id, registers=sketch.encode())
    answer = NodeAnswer(disclosure="exact", providers=[], datasets=[], sketches=[wire])
    body = json.loads(answer.body())
    assert body["sketches"][0]["registers"] == sketch.encode()
    back = NodeAnswer.model_validate_json(answer.body())
    assert back.sketches is not None and back.sketches[0].sketch() == sketch


def test_node_request_distinct() -> None:
    query = CohortQuery().normalised()
    assert node_request(query).distinct is False
    sent = node_request(query, distinct=True)
    assert sent.distinct is True
    assert NodeRequest.model_validate_json(sent.model_dump_json()).distinct is True
    assert NodeRequest.model_validate({"query": sent.query}).distinct is False


# --- distinct subjects ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sizes", "truth"),
    [
        # (start, count) per provider; truth is the size of the union
        ([(0, 1)], 1),
        ([(0, 10), (5, 10)], 15),
        ([(0, 800), (600, 900), (1400, 100)], 1500),
        ([(0, 30_000), (20_000, 30_000)], 50_000),
    ],
)
def test_distinct_subjects_exact(sizes: list[tuple[int, int]], truth: int) -> None:
    sketches = {f"prov-{i}": _sketch(_names("d", n, start)) for i, (start, n) in enumerate(sizes)}
    union = _sketch(_names("d", truth))
    result = distinct_subjects(sketches, {}, DisclosureSettings.exact_counts(), SECRET)
    assert result.estimate.value == round(union.estimate())
    assert not result.estimate.suppressed
    assert result.relative_error == ERROR_BOUND
    assert result.lower is not None and result.upper is not None
    assert result.lower <= truth <= result.upper
    assert result.upper - result.lower <= 3 * ERROR_BOUND * truth + 2
    assert result.providers == tuple(sorted(sketches))
    assert "HyperLogLog" in result.estimate.precision
    missing = distinct_subjects(
        sketches, {"prov-x": "no answer"}, DisclosureSettings.exact_counts(), SECRET
    )
    assert missing.estimate == result.estimate
    assert missing.lower == result.lower and missing.upper is None
    assert missing.missing == {"prov-x": "no answer"}


def test_distinct_subjects_of_nothing() -> None:
    result = distinct_subjects({}, {}, DisclosureSettings.exact_counts(), SECRET)
    assert (result.estimate.value, result.lower, result.upper) == (0, 0, 0)
    assert result.providers == ()


def test_small_union_is_suppressed() -> None:
    rules = DisclosureSettings(threshold=10, rounding=1, epsilon=None, differencing=False)
    sketches = {"a": _sketch(["p1", "p2"]), "b": _sketch(["p2", "p3"])}
    result = distinct_subjects(sketches, {}, rules, SECRET)
    assert result.estimate.suppressed and result.estimate.value is None
    assert result.estimate.reason == "small"
    assert result.lower is None and result.upper is None
    # six subjects at each of two providers, the same six: 12 rows, 6 distinct, suppressed
    same = _names("six", 6)
    twice = distinct_subjects({"a": _sketch(same), "b": _sketch(same)}, {}, rules, SECRET)
    assert twice.estimate.suppressed
    assert distinct_subjects({"a": _sketch(_names("ten", 12))}, {}, rules, SECRET).estimate.value


def test_noisy_estimate_is_deterministic_and_set_dependent() -> None:
    rules = DisclosureSettings(
        threshold=1, rounding=1, publish_zero=True, epsilon=1.0, differencing=False
    )
    a, b = _sketch(_names("n", 600)), _sketch(_names("n", 600, start=400))
    first = distinct_subjects({"a": a, "b": b}, {}, rules, SECRET)
    assert first.estimate.value is not None
    assert distinct_subjects({"a": a, "b": b}, {}, rules, SECRET) == first
    # the noise is keyed by the union's registers, not by how providers split it
    for split in ({"b": b, "a": a}, {"x": a.merged(b)}, {"a": a, "b": b, "c": a}):
        again = distinct_subjects(split, {}, rules, SECRET)
        assert again.estimate == first.estimate
    published: dict[int, int] = {}
    for n in (300, 350, 400, 450, 500, 550, 650, 700):
        result = distinct_subjects({"a": _sketch(_names("n", n))}, {}, rules, SECRET)
        assert result.estimate.value is not None
        published[n] = result.estimate.value
        assert abs(result.estimate.value - n) <= ERROR_BOUND * n + 20  # Laplace, scale 1
    assert len(set(published.values())) == len(published)
    exact = {n: round(_sketch(_names("n", n)).estimate()) for n in published}
    assert published != exact  # noise was added to some of them
    assert "Laplace scale 1" in first.estimate.precision


# --- series rows ----------------------------------------------------------------------------

PSEUDO = Pseudonymiser(b"0123456789abcdef-test")


def _series(patient: str, series: str) -> dict[str, object]:
    return {"PatientID": patient, "StudyInstanceUID": f"1.{series}", "SeriesInstanceUID": series}


def test_series_rows_linkage_column() -> None:
    order = [("A", "1.1"), ("A", "1.2"), ("B", "2.1"), ("A ", "1.3"), ("C", "3.1"), ("B", "2.2")]
    rows = SeriesRows(PSEUDO, linkage=LINK)
    for patient, series in order:
        assert rows.add("ds", _series(patient, series)) is None
    batch = rows.take()
    assert batch.schema == SERIES_SCHEMA
    out = batch.to_pylist()
    codes = [row["linkage"] for row in out]
    assert codes == [LINK(patient.strip()) for patient, _ in order]
    assert codes[0] == codes[1] == codes[3] and codes[2] == codes[5]
    assert len({codes[0], codes[2], codes[4]}) == 3
    for row in out:
        assert row["linkage"] != row["subject"]
    hashes = {LINK.hash(p) for p in ("A", "B", "C")}
    assert not hashes & set(codes)  # the code, never the keyed hash

    plain = SeriesRows(PSEUDO)
    for patient, series in order:
        plain.add("ds", _series(patient, series))
    assert [row["linkage"] for row in plain.take().to_pylist()] == [None] * len(order)


def test_bounds_allow_for_rounding_and_noise_under_the_default_rules() -> None:
    """Under the default rules (rounding, Laplace noise) the bounds hold the true number of
    distinct subjects for nearly every set: they widen by half a rounding step and three noise
    scales (a Laplace draw exceeds that 5% of the time)."""
    rules = DisclosureSettings()
    held = published = 0
    for n in range(10, 60):
        truth = _sketch(_names(f"bounds-{n}", n))
        result = distinct_subjects({"p": truth}, {}, rules, SECRET)
        if result.estimate.value is None:
            continue
        published += 1
        assert result.lower is not None and result.upper is not None
        held += result.lower <= n <= result.upper
    assert published >= 40 and held >= 0.9 * published
