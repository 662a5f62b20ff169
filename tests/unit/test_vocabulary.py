"""The shipped vocabularies: closures checked against the raw source text, coverage of the
BodyPartExamined values real data uses, labels (with the hand-made translations), CURIEs, and the
reproducible build."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from catalogue.dcat.access_levels import AccessLevel
from catalogue.exceptions import ConfigError
from catalogue.ontology import build
from catalogue.ontology.curie import CURIE_PREFIXES, to_curie, to_iri
from catalogue.ontology.turtle import Label, SchemeRecord
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


TRANSLATIONS = ONTOLOGIES_DIR / "curated" / "labels-translations.tsv"


def translation_rows() -> list[tuple[str, str, str, str]]:
    """(curie, language, label, kind) of the curated translations table."""
    lines = TRANSLATIONS.read_text(encoding="utf-8").splitlines()
    rows = [tuple(x.split("\t")) for x in lines if x and x[0] != "#"]
    assert rows[0] == ("curie", "language", "label", "kind")
    return [(r[0], r[1], r[2], r[3]) for r in rows[1:]]


def test_labels_are_language_tagged_in_the_sources_languages(vocab: Vocabulary) -> None:
    # every source in the corpus labels in English only; the other languages are exactly the
    # hand-made translations of the curated table
    languages = set()
    translated = set()
    for concept in vocab.concepts.values():
        for labels in (concept.pref_labels, concept.alt_labels, concept.hidden_labels):
            languages |= set(labels)
        if concept.scheme != "access-right":
            assert concept.pref_labels.get("en"), concept.curie
        assert not set(concept.hidden_labels) - {"en"}, concept.curie
        for language, text in concept.pref_labels.items():
            if language != "en":
                translated.add((concept.curie, language, text, "pref"))
        for language, texts in concept.alt_labels.items():
            if language != "en":
                translated |= {(concept.curie, language, text, "alt") for text in texts}
    assert languages == {"en", "de", "fr", "es", "it", "nl", "pt", "pl"}
    assert translated == set(translation_rows())
    # the access-right labels are not in the corpus: codes only
    assert all(not c.pref_labels for c in vocab.in_scheme("access-right"))
    assert vocab["NCIT:C2926"].alt_labels["en"]  # synonyms from the Disease Ontology


@pytest.mark.parametrize(
    ("text", "curies"),
    [
        # lung cancer: NCIt's malignant lung neoplasm (the default mapping of "Lung Cancer") and
        # the Disease Ontology's lung cancer (what the English label names, carcinomas below it)
        ("Lungenkrebs", ["DOID:1324", "NCIT:C7377"]),
        ("cancro do pulmão", ["DOID:1324", "NCIT:C7377"]),
        ("rak płuca", ["DOID:1324", "NCIT:C7377"]),
        ("nicht-kleinzelliges Lungenkarzinom", ["NCIT:C2926"]),
        ("cancer du sein", ["NCIT:C9335"]),
        ("borstkanker", ["NCIT:C9335"]),
        ("Brustkrebs", ["NCIT:C9335"]),
        ("cáncer de próstata", ["NCIT:C7378"]),
        ("Darmkrebs", ["NCIT:C4978"]),
        ("nierkanker", ["NCIT:C7548"]),
        ("Nierenzellkarzinom", ["NCIT:C9385"]),
        ("cáncer de hígado", ["NCIT:C34803"]),
        ("carcinome hépatocellulaire", ["NCIT:C3099"]),
        ("rak trzustki", ["DOID:1793", "NCIT:C9005"]),
        ("Pankreastumor", ["NCIT:C3305"]),
        ("tumore al cervello", ["NCIT:C3568"]),  # Italian "tumore" names cancers
        ("Hirntumor", ["NCIT:C2907"]),
        ("Glioblastom", ["NCIT:C3058"]),
        ("cancer de la tête et du cou", ["DOID:11934", "NCIT:C4013"]),
        ("cancer du col de l'utérus", ["NCIT:C9311"]),
        ("Eierstockkrebs", ["NCIT:C7431"]),
        ("tumore della vescica", ["NCIT:C9334"]),
        ("Endometriumkarzinom", ["NCIT:C7558"]),
        ("czerniak", ["NCIT:C3224"]),
        ("lymphome", ["NCIT:C3208"]),
        ("Leukämie", ["NCIT:C3161"]),
        ("Speiseröhrenkrebs", ["DOID:5041"]),
        ("cáncer gástrico", ["NCIT:C9331"]),
        ("Lunge", ["SCT:39607008"]),
        ("Brustkorb", ["SCT:816094009"]),
        ("sein", ["SCT:76752008"]),
        ("Gehirn", ["SCT:12738006"]),
        ("fegato", ["SCT:10200004"]),
        ("próstata", ["SCT:41216001"]),
        ("IRM", ["DCM:MR"]),
        ("Magnetresonanztomographie", ["DCM:MR"]),
        ("tomografía computarizada", ["DCM:CT"]),
        ("TEP", ["DCM:PT"]),
        ("mamografía", ["DCM:MG"]),
        ("Ultraschall", ["DCM:US"]),
        ("segmentación", ["DCM:SEG"]),
    ],
)
def test_translated_labels_resolve(vocab: Vocabulary, text: str, curies: list[str]) -> None:
    assert [c.curie for c in vocab.lookup(text)] == curies
    assert [c.curie for c in vocab.lookup(text.upper())] == curies  # normalised like any label


def test_translations_keep_the_english_labels(vocab: Vocabulary) -> None:
    lung = vocab["DOID:1324"]
    assert lung.label() == "lung cancer"
    assert lung.label("de") == "Lungenkrebs"
    assert lung.label("pt") == "cancro do pulmão"
    assert "câncer de pulmão" in lung.alt_labels["pt"]
    assert vocab["DCM:MR"].label() == "Magnetic Resonance"
    # every concept the table names is in the vocabularies, with one preferred label per language
    rows = translation_rows()
    assert len(rows) > 500
    prefs = [(curie, language) for curie, language, _, kind in rows if kind == "pref"]
    assert len(prefs) == len(set(prefs))
    assert {curie for curie, *_ in rows} <= set(vocab.concepts)


def test_broken_translation_tables_are_config_errors(tmp_path: Path) -> None:
    def scheme() -> SchemeRecord:
        record = SchemeRecord("s", "t", "d", "1", [], [], "r")
        for code, label in (("C1", "Lung"), ("C2", "Liver")):
            record.concept(to_iri(f"NCIT:{code}")).pref.append(Label(label))
        return record

    header = "# comment\ncurie\tlanguage\tlabel\tkind\n"
    good = scheme()
    table = tmp_path / "t.tsv"
    table.write_text(header + "NCIT:C1\tde\tLunge\tpref\nNCIT:C1\tnl\tlong\talt\n")
    build.add_translations([good], table)
    assert [(x.text, x.language) for x in good.concepts[to_iri("NCIT:C1")].pref] == [
        ("Lung", "en"),
        ("Lunge", "de"),
    ]
    assert "https://creativecommons.org/publicdomain/zero/1.0/" in good.licences
    bad_rows = {
        "NCIT:C9\tde\tX\tpref": "in no vocabulary",
        "NOPE:1\tde\tX\tpref": "known prefix",
        "NCIT:C1\ten\tLungs\talt": "language tag",
        "NCIT:C1\ten-GB\tLungs\talt": "language tag",
        "NCIT:C1\tdeu-x\tX\tpref": "language tag",
        "NCIT:C1\tde\tLunge\tpref\nNCIT:C1\tde\tLungen\tpref": "preferred label in de",
        "NCIT:C1\tde\tLeber\tpref\nNCIT:C2\tde\tLeber\tpref": "already labels",
        "NCIT:C1\tfr\tliver\talt": "already labels",
        "NCIT:C1\tde\tLunge\tsynonym": "pref or alt",
        "NCIT:C1\tde\t Lunge\tpref": "non-empty",
        "NCIT:C1\tde\tLunge": "non-empty",
        "NCIT:C1\tde\tL\talt\nNCIT:C1\tde\tL\talt": "twice",
    }
    for rows, message in bad_rows.items():
        table.write_text(header + rows + "\n")
        with pytest.raises(ConfigError, match=message):
            build.add_translations([scheme()], table)
    table.write_text("curie\tlang\tlabel\tkind\n")
    with pytest.raises(ConfigError, match="header"):
        build.add_translations([scheme()], table)
    with pytest.raises(ConfigError, match="missing"):
        build.add_translations([scheme()], tmp_path / "absent.tsv")


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


@pytest.mark.parametrize(
    ("british", "american"),
    [
        ("oesophageal cancer", "esophageal cancer"),
        ("Leukaemia", "leukemia"),
        ("brain tumour", "brain tumor"),
        ("paediatric", "pediatric"),
        ("haematologic malignancy", "hematologic malignancy"),
    ],
)
def test_british_spellings_look_up_as_american(british: str, american: str) -> None:
    vocabulary = shipped_vocabulary()
    assert normalise(british) == normalise(american)
    assert vocabulary.lookup(british) == vocabulary.lookup(american)


@pytest.mark.parametrize(
    ("synonym", "curie"),
    [("HNSCC", "NCIT:C34447"), ("bone metastases", "NCIT:C3580"), ("SCLC", "NCIT:C4917")],
)
def test_curated_english_synonyms_resolve(synonym: str, curie: str) -> None:
    assert curie in {c.curie for c in shipped_vocabulary().lookup(synonym)}
