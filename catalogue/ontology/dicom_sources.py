"""DICOM vocabularies from the corpus: anatomic regions (CID 4 and PS3.16 Annex L, SNOMED CT
codes as DICOM prints them), BodyPartExamined defined terms, and modalities (CID 29, CID 33)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from catalogue.exceptions import ConfigError
from catalogue.ontology.curie import VOCAB_BASE, to_iri
from catalogue.ontology.turtle import CollectionRecord, Label, SchemeRecord

DICOM_LICENCE = "https://www.dicomstandard.org/current"
DICOM_RIGHTS = (
    "DICOM PS3.16 content (NEMA), free to use; SNOMED CT codes only as printed in DICOM's own "
    "tables (CID 4, Annex L), SNOMED CT being a trademark of SNOMED International."
)
PART16 = "https://dicom.nema.org/medical/dicom/current/output/chtml/part16/"
PYDICOM = "https://pypi.org/project/pydicom/3.0.2/"
HIGHDICOM = "https://pypi.org/project/highdicom/0.28.2/"
APACHE = "https://www.apache.org/licenses/LICENSE-2.0"
ANNOTATION_MODALITIES = ("SEG", "RTSTRUCT", "SR")


def read_cid(path: Path) -> dict[str, str]:
    """Code value -> code meaning of one pydicom-generated CID table."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["code_value"]: row["code_meaning"] for row in csv.DictReader(handle)}


def read_annex_l(path: Path) -> dict[str, tuple[str, str]]:
    """BodyPartExamined defined term -> (SNOMED CT code, code meaning)."""
    table = json.loads(path.read_text(encoding="utf-8"))
    terms: dict[str, tuple[str, str]] = {}
    for term, (scheme, code, meaning, _laterality) in table.items():
        if scheme != "SCT":
            raise ConfigError(f"{path}: {term} is coded in {scheme}, not SCT")
        terms[term] = (code, meaning)
    return terms


def read_tsv(path: Path) -> list[list[str]]:
    """Rows of a curated table: `#` lines and the header skipped."""
    lines = [x for x in path.read_text(encoding="utf-8").splitlines() if x and x[0] != "#"]
    return [x.split("\t") for x in lines[1:]]


def _endo(meaning: str) -> bool:
    """Annex L's Endo-... terms name an approach (inside the organ), not the organ."""
    return meaning.startswith("Endo-")


def anatomy_schemes(dicom: Path, curated: Path) -> tuple[SchemeRecord, SchemeRecord]:
    """The anatomic-region (SCT) and body-part-examined (BPE) schemes with the curated
    hierarchy and aliases."""
    cid4 = read_cid(dicom / "pydicom-generated" / "cid4_anatomic_region.csv")
    annex = read_annex_l(dicom / "highdicom" / "anatomic_regions.json")
    hierarchy = read_tsv(curated / "anatomy-hierarchy.tsv")
    aliases = read_tsv(curated / "body-part-aliases.tsv")
    digest = hashlib.sha256(
        (curated / "anatomy-hierarchy.tsv").read_bytes()
        + (curated / "body-part-aliases.tsv").read_bytes()
    ).hexdigest()
    version = f"highdicom-0.28.2+pydicom-3.0.2+curated-{digest[:8]}"
    regions = SchemeRecord(
        key="anatomic-region",
        title="Anatomic regions (DICOM CID 4 and PS3.16 Annex L)",
        description=(
            "The SNOMED CT anatomic-region codes of DICOM CID 4 and of the BodyPartExamined "
            "mapping of PS3.16 Annex L, with their DICOM code meanings and a hand-curated "
            "part-of hierarchy (see ontologies/README.md)."
        ),
        version=version,
        sources=[f"{PART16}sect_CID_4.html", f"{PART16}chapter_L.html", PYDICOM, HIGHDICOM],
        licences=[DICOM_LICENCE, APACHE],
        rights=f"{DICOM_RIGHTS} Hierarchy curated by the catalogue project (Apache-2.0).",
    )
    parts = SchemeRecord(
        key="body-part-examined",
        title="DICOM BodyPartExamined defined terms (PS3.16 Annex L)",
        description=(
            "The defined terms of the DICOM attribute Body Part Examined (0018,0015), each "
            "matched to its SNOMED CT code per PS3.16 Annex L, with the curated hierarchy "
            "carried over through those codes and curated aliases seen in real headers."
        ),
        version=version,
        sources=[f"{PART16}chapter_L.html", HIGHDICOM],
        licences=[DICOM_LICENCE, APACHE],
        rights=f"{DICOM_RIGHTS} Hierarchy and aliases curated by the catalogue project.",
    )
    _add_regions(regions, cid4, annex)
    broader = _curated_broader(hierarchy, annex, set(cid4) | {c for c, _ in annex.values()})
    for code, parents in broader.items():
        regions.concept(to_iri(f"SCT:{code}")).broader |= {to_iri(f"SCT:{p}") for p in parents}
    _add_body_parts(parts, regions, annex, broader, aliases)
    return regions, parts


def _add_regions(
    scheme: SchemeRecord, cid4: dict[str, str], annex: dict[str, tuple[str, str]]
) -> None:
    """One concept per SCT code; the label is CID 4's meaning unless that is an Endo- term."""
    organ_meanings: dict[str, list[str]] = {}
    for term in sorted(annex):
        code, meaning = annex[term]
        if not _endo(meaning) and meaning not in organ_meanings.get(code, []):
            organ_meanings.setdefault(code, []).append(meaning)
    for code in sorted(set(cid4) | set(organ_meanings) | {c for c, _ in annex.values()}):
        cid_meaning = cid4.get(code)
        names = organ_meanings.get(code, [])
        if cid_meaning and not (_endo(cid_meaning) and names):
            names = [cid_meaning, *names]
        elif not names:
            names = [next(m for c, m in annex.values() if c == code)]
        concept = scheme.concept(to_iri(f"SCT:{code}"))
        concept.notation = code
        concept.pref.append(Label(names[0]))
        for name in names[1:]:
            concept.add_alt(name)


def _node_code(node: str, annex: dict[str, tuple[str, str]], codes: set[str]) -> str:
    if node.startswith("SCT:"):
        code = node.removeprefix("SCT:")
        if code not in codes:
            raise ConfigError(f"anatomy hierarchy: {node} is in neither CID 4 nor Annex L")
        return code
    if node not in annex:
        raise ConfigError(f"anatomy hierarchy: {node} is not a BodyPartExamined defined term")
    return annex[node][0]


def _curated_broader(
    rows: list[list[str]], annex: dict[str, tuple[str, str]], codes: set[str]
) -> dict[str, set[str]]:
    """SCT code -> SCT codes of its curated parents."""
    broader: dict[str, set[str]] = {}
    for row in rows:
        if len(row) != 3 or row[2] not in ("part-of", "covered-by", "is-a"):
            raise ConfigError(f"anatomy hierarchy: bad row {row}")
        child, parent = _node_code(row[0], annex, codes), _node_code(row[1], annex, codes)
        if child != parent:
            broader.setdefault(child, set()).add(parent)
    return broader


def _nearest_terms(
    code: str, broader: dict[str, set[str]], terms_of: dict[str, list[str]]
) -> set[str]:
    """Defined terms of the nearest ancestors of `code` that have one."""
    found: set[str] = set()
    pending, seen = list(broader.get(code, ())), set()
    while pending:
        parent = pending.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if terms_of.get(parent):
            found.update(terms_of[parent])
        else:
            pending.extend(broader.get(parent, ()))
    return found


def _add_body_parts(
    scheme: SchemeRecord,
    regions: SchemeRecord,
    annex: dict[str, tuple[str, str]],
    broader: dict[str, set[str]],
    aliases: Iterable[list[str]],
) -> None:
    terms_of: dict[str, list[str]] = {}
    for term, (code, _) in annex.items():
        terms_of.setdefault(code, []).append(term)
    for term, (code, meaning) in sorted(annex.items()):
        iri, sct = to_iri(f"BPE:{term}"), to_iri(f"SCT:{code}")
        concept = scheme.concept(iri)
        concept.notation = term
        concept.pref.append(Label(meaning))
        (concept.close if _endo(meaning) else concept.exact).add(sct)
        region = regions.concepts[sct]
        (region.close if _endo(meaning) else region.exact).add(iri)
        parents = _nearest_terms(code, broader, terms_of) - {term}
        concept.broader = {to_iri(f"BPE:{p}") for p in parents}
    for row in aliases:
        if len(row) < 2 or row[1] not in annex:
            raise ConfigError(f"body-part aliases: bad row {row}")
        scheme.concepts[to_iri(f"BPE:{row[1]}")].add_hidden(row[0])


def modality_scheme(dicom: Path) -> SchemeRecord:
    """DICOM CID 33 modalities (CID 29 acquisition modalities included), with collections."""
    cid29 = read_cid(dicom / "pydicom-generated" / "cid29_acquisition_modality.csv")
    cid33 = read_cid(dicom / "pydicom-generated" / "cid33_modality.csv")
    scheme = SchemeRecord(
        key="modality",
        title="DICOM modalities (CID 33, with the CID 29 acquisition modalities)",
        description=(
            "The DCM modality codes of DICOM CID 33, which holds every acquisition modality of "
            "CID 29 and the derived objects (SEG, RTSTRUCT, SR...); collections mark the "
            "acquisition and the annotation modalities."
        ),
        version="pydicom-3.0.2",
        sources=[f"{PART16}sect_CID_29.html", f"{PART16}sect_CID_33.html", PYDICOM],
        licences=[DICOM_LICENCE],
        rights="DICOM PS3.16 content (NEMA), free to use.",
    )
    for code, meaning in {**cid33, **cid29}.items():
        concept = scheme.concept(to_iri(f"DCM:{code}"))
        concept.notation = code
        concept.pref = [Label(meaning)]
    missing = [c for c in ANNOTATION_MODALITIES if c not in cid33]
    if missing:
        raise ConfigError(f"CID 33 lacks the annotation modalities {missing}")
    scheme.collections += [
        CollectionRecord(
            f"{VOCAB_BASE}modality/acquisition",
            "Acquisition modalities (DICOM CID 29)",
            {to_iri(f"DCM:{c}") for c in cid29},
        ),
        CollectionRecord(
            f"{VOCAB_BASE}modality/annotation",
            "Annotation modalities (segmentations, RT structure sets, structured reports)",
            {to_iri(f"DCM:{c}") for c in ANNOTATION_MODALITIES},
        ),
    ]
    return scheme
