"""The shipped vocabularies: closures checked against the raw source text, coverage of the
BodyPartExamined values real data uses, labels, CURIEs, and the reproducible build."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from catalogue.dcat.access_levels import AccessLevel
from catalogue.exceptions import ConfigError
from catalogue.ontology import build
from catalogue.ontology.curie import CURIE_PREFIXES, to_curie, to_iri
from catalogue.ontology.vocabulary import (
    ONTOLOGIES_DIR,
    Vocabulary,
    load_vocabulary,
    normalise,
    shipped_files,
    shipped_vocabulary,
    transitive_closure,
)
from tests.conftest import require
from tests.corpus import CORPUS

NCIT_FOLDER = CORPUS / "ncit-neoplasm"
SCHEMES = {
    "ncit-neoplasm",
    "doid-cancer-slim",
    "icd10cm-neoplasms",
    "anatomic-region",
    "body-part-examined",
    "modality",
    "access-right",
}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return shipped_vocabulary()


def test_every_shipped_file_is_one_scheme(vocab: Vocabulary) -> None:
    assert set(vocab.schemes) == SCHEMES
    assert {p.stem for p in shipped_files()} == SCHEMES
    for scheme in vocab.schemes.values():
        assert scheme.version and scheme.sources and scheme.licences
        assert vocab.in_scheme(scheme.key), scheme.key
    assert len(vocab.in_scheme("ncit-neoplasm")) > 7000
    assert len(vocab.in_scheme("body-part-examined")) == 317


def source_ancestors(lines: list[str], code: str) -> set[str]:
    """Ancestors of an NCIt code read straight off the tab-indented text, independently of
    the build: from each line naming the code, walk up the file and take the nearest line at
    each smaller indentation."""
    found: set[str] = set()
    roots = {"R_1": "C3263", "R_2": "C4741"}  # Neoplasm by Site / by Morphology
    for number, line in enumerate(lines):
        if f"({code})" not in line:
            continue
        depth = len(line) - len(line.lstrip("\t"))
        for above in reversed(lines[:number]):
            above_depth = len(above) - len(above.lstrip("\t"))
            if above_depth < depth:
                parent = re.findall(r"\((C\d+|R_\d+)\)", above)[0]
                found.add(roots.get(parent, parent))
                depth = above_depth
    return found | {"C3262"}  # Neoplasm, the root of both trees


def test_ncit_ancestors_match_the_source_text(
    request: pytest.FixtureRequest, vocab: Vocabulary
) -> None:
    path = NCIT_FOLDER / "Neoplasm_Core_Hierarchy_Plus.txt"
    require(request.config, path.exists(), f"corpus file {path} is missing")
    lines = path.read_text(encoding="utf-8").splitlines()
    codes = set(re.findall(r"\((C\d+)\)", "\n".join(lines)))
    # Lung Non-Small Cell Carcinoma, Lung Adenocarcinoma, Glioblastoma, Breast Carcinoma...
    named = ["C2926", "C3512", "C3058", "C4872", "C9385", "C3099", "C8851"]
    sample = [c for c in named if c in codes] + random.Random(7).sample(sorted(codes), 40)
    assert "C2926" in sample
    for code in sample:
        expected = {f"NCIT:{c}" for c in source_ancestors(lines, code)}
        assert vocab.ancestors(f"NCIT:{code}") == expected, code
    assert "NCIT:C4878" in vocab.ancestors("NCIT:C2926")  # Lung Carcinoma
    assert "NCIT:C2926" in vocab.descendants("NCIT:C4878")


def test_closures_are_each_others_inverse(vocab: Vocabulary) -> None:
    for curie in vocab.concepts:
        for ancestor in vocab.ancestors(curie):
            assert curie in vocab.descendants(ancestor)
        for descendant in vocab.descendants(curie):
            assert curie in vocab.ancestors(descendant)
        assert curie not in vocab.ancestors(curie)
        assert vocab[curie].broader <= vocab.ancestors(curie)


def test_transitive_closure_and_cycles() -> None:
    diamond = {"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []}
    closure = transitive_closure(diamond)
    assert closure == {"d": {"a", "b", "c"}, "b": {"a"}, "c": {"a"}}
    with pytest.raises(ConfigError, match="cycle"):
        transitive_closure({"a": ["b"], "b": ["c"], "c": ["a"]})


@pytest.mark.parametrize(
    ("inner", "outer"),
    [
        ("SCT:39607008", "SCT:816094009"),  # lung within thorax
        ("BPE:LUNG", "BPE:CHEST"),
        ("BPE:LUNG", "BPE:THORAX"),
        ("BPE:LIVER", "BPE:ABDOMEN"),
        ("BPE:PROSTATE", "BPE:PELVIS"),
        ("BPE:BRAIN", "BPE:HEAD"),
        ("BPE:CHEST", "BPE:CHESTABDPELVIS"),
        ("BPE:ABDOMEN", "BPE:CHESTABDPELVIS"),
        ("BPE:PELVIS", "BPE:CHESTABDPELVIS"),
        ("BPE:LUNG", "BPE:WHOLEBODY"),
        ("BPE:NECK", "BPE:HEADNECK"),
        ("NCIT:C2926", "NCIT:C3262"),
    ],
)
def test_part_of_hierarchy(vocab: Vocabulary, inner: str, outer: str) -> None:
    assert inner in vocab.descendants(outer)
    assert outer in vocab.ancestors(inner)


def idc_body_parts(min_series: int) -> list[str]:
    import duckdb
    import idc_index_data

    parquet = idc_index_data.IDC_INDEX_PARQUET_FILEPATH
    rows = (
        duckdb.connect()
        .execute(
            f"SELECT BodyPartExamined FROM read_parquet('{parquet}') "
            "WHERE BodyPartExamined IS NOT NULL GROUP BY 1 HAVING count(*) >= ?",
            [min_series],
        )
        .fetchall()
    )
    return sorted(str(row[0]) for row in rows)


def test_idc_body_parts_are_mapped_or_listed(
    request: pytest.FixtureRequest, vocab: Vocabulary
) -> None:
    try:
        values = idc_body_parts(100)
    except ImportError as exc:
        require(request.config, False, f"idc-index-data is not installed ({exc})")
        return
    assert "CHESTABDPELVIS" in values
    readme = (ONTOLOGIES_DIR / "README.md").read_text(encoding="utf-8")
    unmapped_section = readme.split("### Deliberately unmapped", 1)[-1].split("\n## ", 1)[0]
    unmapped = [v for v in values if not vocab.lookup(v, scheme="body-part-examined")]
    for value in unmapped:
        assert f"`{value}`" in unmapped_section, f"{value} is neither mapped nor listed"
    assert unmapped == []  # every value used by 100 series or more is mapped
    assert [c.curie for c in vocab.lookup("Left Breast", "body-part-examined")] == ["BPE:BREAST"]
    (lung,) = vocab.lookup("LUNG", "body-part-examined")
    assert "SCT:39607008" in lung.exact_matches


def test_labels_are_language_tagged_in_the_sources_languages(vocab: Vocabulary) -> None:
    # every source in the corpus labels in English only; none gives another language
    languages = set()
    for concept in vocab.concepts.values():
        for labels in (concept.pref_labels, concept.alt_labels, concept.hidden_labels):
            languages |= set(labels)
        if concept.scheme != "access-right":
            assert concept.pref_labels.get("en"), concept.curie
    assert languages == {"en"}
    # the access-right labels are not in the corpus: codes only
    assert all(not c.pref_labels for c in vocab.in_scheme("access-right"))
    assert vocab["NCIT:C2926"].alt_labels["en"]  # synonyms from the Disease Ontology


def test_curie_round_trip(vocab: Vocabulary) -> None:
    examples = {
        "NCIT:C2926": "http://purl.obolibrary.org/obo/NCIT_C2926",
        "SCT:39607008": "http://snomed.info/id/39607008",
        "DCM:CT": "http://dicom.nema.org/resources/ontology/DCM/CT",
        "DOID:1324": "http://purl.obolibrary.org/obo/DOID_1324",
        "ICD10CM:C34": "http://purl.bioontology.org/ontology/ICD10CM/C34",
        "BPE:CHEST": "https://w3id.org/cancer-imaging-catalogue/vocab/body-part-examined/CHEST",
    }
    for curie, iri in examples.items():
        assert to_iri(curie) == iri
        assert to_curie(iri) == curie
        assert vocab[curie].iri == iri
        assert vocab.by_iri(iri) is vocab[curie]
        assert vocab.resolve(iri) is vocab.resolve(curie) is vocab[curie]
    for curie, concept in vocab.concepts.items():
        assert to_curie(to_iri(curie)) == curie == concept.curie
        assert curie.split(":")[0] in CURIE_PREFIXES
    for bad in ("NOPE:1", "NCIT", "NCIT:"):
        with pytest.raises(ValueError, match="known prefix"):
            to_iri(bad)
    with pytest.raises(ValueError, match="no known CURIE prefix"):
        to_curie("http://example.org/x")


def test_matches_are_symmetric(vocab: Vocabulary) -> None:
    assert "DOID:3908" in vocab["NCIT:C2926"].exact_matches
    assert "NCIT:C2926" in vocab["DOID:3908"].exact_matches
    assert "BPE:CHEST" in vocab["SCT:816094009"].exact_matches
    assert "SCT:34402009" in vocab["BPE:ENDORECTAL"].close_matches  # an approach, not the organ


def test_lookup_normalises(vocab: Vocabulary) -> None:
    assert normalise("  Chest,  Abdomen and\tPELVIS ") == "chest abdomen and pelvis"
    assert normalise("Ｃｈｅｓｔ") == "chest"
    found = [c.curie for c in vocab.lookup("Chest, Abdomen and Pelvis")]
    assert set(found) == {"BPE:CHESTABDPELVIS", "SCT:416775004"}
    assert vocab.lookup("non-small cell lung carcinoma", "ncit-neoplasm")[0].curie == "NCIT:C2926"
    assert [c.curie for c in vocab.lookup("whole body")] == ["BPE:WHOLEBODY"]
    assert vocab.lookup("C34.1", "icd10cm-neoplasms")[0].curie == "ICD10CM:C34.1"


def test_modalities_and_access_rights(vocab: Vocabulary) -> None:
    base = "https://w3id.org/cancer-imaging-catalogue/vocab/modality/"
    assert vocab.collections[f"{base}annotation"] == {"DCM:SEG", "DCM:RTSTRUCT", "DCM:SR"}
    assert len(vocab.collections[f"{base}acquisition"]) == 51
    assert vocab["DCM:CT"].label() == "Computed Tomography"
    rights = {c.notation for c in vocab.in_scheme("access-right")}
    assert rights == {level.name for level in AccessLevel}
    assert {c.iri for c in vocab.in_scheme("access-right")} == {
        str(level.iri) for level in AccessLevel
    }


def test_broken_vocabularies_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no vocabulary"):
        shipped_files(tmp_path / "absent")
    with pytest.raises(ConfigError, match="cannot read"):
        load_vocabulary([tmp_path / "absent.ttl"])
    bad = tmp_path / "bad.ttl"
    bad.write_text("@prefix skos: <http://www.w3.org/2004/02/skos/core#> .\n<a> <b> .\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_vocabulary([bad])
    bad.write_text("<http://x/s> a <http://www.w3.org/2004/02/skos/core#Concept> .\n")
    with pytest.raises(ConfigError, match="one skos:ConceptScheme"):
        load_vocabulary([bad])
    modality = ONTOLOGIES_DIR / "modality.ttl"
    twice = tmp_path / "twice.ttl"
    twice.write_text(modality.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(ConfigError, match="two files declare"):
        load_vocabulary([modality, twice])


def test_build_reproduces_the_shipped_files(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    require(request.config, (CORPUS / "dicom-codes").is_dir(), f"corpus {CORPUS} is missing")
    written = build.write(build.build(CORPUS, ONTOLOGIES_DIR / "curated"), tmp_path)
    assert {p.name for p in written} == {p.name for p in shipped_files()}
    for path in written:
        shipped = ONTOLOGIES_DIR / path.name
        assert path.read_bytes() == shipped.read_bytes(), f"{path.name}: rerun the build"
    total = sum(p.stat().st_size for p in written)
    assert total < 4_000_000
