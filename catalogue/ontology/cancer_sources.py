"""Cancer-type vocabularies from the corpus: the NCI Thesaurus neoplasm subset, the Disease
Ontology cancer slim, and ICD-10-CM chapter 2."""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from catalogue.exceptions import ConfigError
from catalogue.ontology.curie import VOCAB_BASE, to_iri
from catalogue.ontology.turtle import CollectionRecord, Label, SchemeRecord

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
CC0 = "https://creativecommons.org/publicdomain/zero/1.0/"
DO_REPO = "https://github.com/DiseaseOntology/HumanDiseaseOntology"

NCIT_ROOT = "C3262"
"""Neoplasm: the root of the tree the labels file lists."""
NCIT_PLACEHOLDERS = {"R_1": "C3263", "R_2": "C4741"}
"""The hierarchy file's two root lines and the NCIt concepts they stand for (by their labels in
the labels file: Neoplasm by Site, Neoplasm by Morphology), both children of Neoplasm."""
_HIERARCHY_LINE = re.compile(r"(\t*)(.*) \((C\d+|R_\d+)\)(?: \(([BMU])\))?")


def read_ncit_hierarchy(path: Path) -> dict[str, tuple[str, set[str]]]:
    """NCIt code -> (label in the hierarchy file, parent codes), from its tab-indented lines."""
    nodes: dict[str, tuple[str, set[str]]] = {}
    stack: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _HIERARCHY_LINE.fullmatch(line.rstrip("\r"))
        if match is None:
            raise ConfigError(f"{path}:{number}: not a 'Label (Ccode)' line: {line!r}")
        tabs, label, code = match.group(1), match.group(2), match.group(3)
        depth = len(tabs)
        if depth > len(stack):
            raise ConfigError(f"{path}:{number}: indented more than one level below its parent")
        del stack[depth:]
        code = NCIT_PLACEHOLDERS.get(code, code)
        parent = stack[-1] if stack else NCIT_ROOT
        entry = nodes.setdefault(code, (label, set()))
        entry[1].add(parent)
        stack.append(code)
    return nodes


def read_ncit_labels(path: Path) -> dict[str, str]:
    """NCIt code (without prefix) -> label, from the `NCIT:Cnnn<TAB>label` file."""
    labels: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            curie, _, label = line.partition("\t")
            labels[curie.removeprefix("NCIT:")] = label.strip()
    return labels


@dataclass
class OboTerm:
    """The parts of an OBO [Term] stanza the build uses."""

    id: str
    name: str = ""
    definition: str | None = None
    synonyms: list[tuple[str, str]] = field(default_factory=list)
    """(text, scope) pairs: EXACT, RELATED, NARROW, BROAD."""
    xrefs: list[str] = field(default_factory=list)
    matches: dict[str, str] = field(default_factory=dict)
    """CURIE -> skos:exactMatch or skos:closeMatch, from property_value lines."""
    parents: list[str] = field(default_factory=list)
    obsolete: bool = False


_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\s*(.*)')
_OBO_ESCAPES = {"n": "\n", "t": "\t", "W": " "}


def _unquote(text: str) -> tuple[str, str]:
    """The OBO quoted string at the start of `text` (escapes resolved) and what follows it."""
    match = _QUOTED.match(text)
    if match is None:
        raise ConfigError(f"OBO: expected a quoted string: {text!r}")
    value = re.sub(r"\\(.)", lambda m: _OBO_ESCAPES.get(m.group(1), m.group(1)), match.group(1))
    return value, match.group(2)


def read_obo(path: Path) -> tuple[str, list[OboTerm]]:
    """The data-version header and the [Term] stanzas of an OBO 1.2 file."""
    version = ""
    terms: list[OboTerm] = []
    current: OboTerm | None = None
    in_term = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            in_term, current = line.strip() == "[Term]", None
            continue
        tag, _, value = line.partition(": ")
        value = value.strip()
        if not in_term:
            if tag == "data-version":
                version = value
            continue
        if tag == "id":
            current = OboTerm(value)
            terms.append(current)
        elif current is not None:
            _read_tag(current, tag, value)
    return version, terms


def _read_tag(term: OboTerm, tag: str, value: str) -> None:
    if tag == "name":
        term.name = value
    elif tag == "def":
        term.definition = _unquote(value)[0]
    elif tag == "synonym":
        text, rest = _unquote(value)
        term.synonyms.append((text, rest.split()[0] if rest else "RELATED"))
    elif tag == "xref":
        term.xrefs.append(value.split()[0])
    elif tag == "is_a":
        term.parents.append(value.split()[0])
    elif tag == "is_obsolete":
        term.obsolete = value == "true"
    elif tag == "property_value":
        predicate, _, rest = value.partition(" ")
        if predicate in ("skos:exactMatch", "skos:closeMatch") and rest.startswith('"'):
            term.matches[_unquote(rest)[0]] = predicate


_XREF_PREFIXES = {"NCI": "NCIT", "ICD10CM": "ICD10CM"}
"""Disease Ontology xref prefixes kept, and ours. ICD-O codes are left out (© WHO/IARC)."""


def do_links(term: OboTerm) -> dict[str, str]:
    """CURIE -> `exact` or `close` for the term's NCIt and ICD-10-CM cross-references: DO's own
    skos:exactMatch/closeMatch where it states one, else exact for NCIt (every NCI xref), close
    for ICD-10-CM (DO's plain ICD-10-CM xrefs are often to a broader category)."""
    links: dict[str, str] = {}
    for xref in term.xrefs:
        prefix, _, local = xref.partition(":")
        ours = _XREF_PREFIXES.get(prefix)
        if ours is not None and local:
            links[f"{ours}:{local}"] = "exact" if ours == "NCIT" else "close"
    for xref, predicate in term.matches.items():
        prefix, _, local = xref.partition(":")
        ours = _XREF_PREFIXES.get(prefix)
        if ours is not None and local:
            links[f"{ours}:{local}"] = "exact" if predicate == "skos:exactMatch" else "close"
    return links


def doid_scheme(folder: Path) -> tuple[SchemeRecord, list[OboTerm]]:
    """The cancer slim and its top nodes as one scheme; the live terms are returned too."""
    version = ""
    terms: dict[str, OboTerm] = {}
    for name in ("DO_cancer_slim.obo", "TopNodes_DOcancerslim.obo"):
        data_version, read = read_obo(folder / name)
        version = version or data_version
        for term in read:
            if not term.obsolete:
                terms.setdefault(term.id, term)
    match = re.search(r"\d{4}-\d{2}-\d{2}", version)
    scheme = SchemeRecord(
        key="doid-cancer-slim",
        title="Disease Ontology cancer slim",
        description=(
            "The Disease Ontology cancer slim and its top nodes, with their is-a hierarchy, "
            "synonyms, definitions, and links to NCI Thesaurus and ICD-10-CM codes."
        ),
        version=match.group(0) if match else version,
        sources=[DO_REPO],
        licences=[CC0],
        rights="Disease Ontology (CC0 1.0); SNOMED CT cross-references removed.",
    )
    for term in terms.values():
        concept = scheme.concept(to_iri(term.id))
        concept.notation = term.id
        concept.pref.append(Label(term.name))
        if term.definition:
            concept.definition.append(Label(term.definition))
        for text, scope in term.synonyms:
            if scope == "EXACT":
                concept.add_alt(text)
            elif scope == "RELATED":
                concept.add_hidden(text)
        concept.broader |= {to_iri(p) for p in term.parents if p in terms}
        for curie, kind in do_links(term).items():
            (concept.exact if kind == "exact" else concept.close).add(to_iri(curie))
    return scheme, list(terms.values())


def ncit_scheme(folder: Path, do_terms: list[OboTerm], do_version: str) -> SchemeRecord:
    """The NCIt neoplasm subset: labels, the core is-a hierarchy, DO synonyms and links."""
    hierarchy_path = folder / "Neoplasm_Core_Hierarchy_Plus.txt"
    labels_path = folder / "ncit_neoplasm_labels.tsv"
    hierarchy = read_ncit_hierarchy(hierarchy_path)
    labels = read_ncit_labels(labels_path)
    digest = hashlib.sha256(hierarchy_path.read_bytes() + labels_path.read_bytes()).hexdigest()
    scheme = SchemeRecord(
        key="ncit-neoplasm",
        title="NCI Thesaurus neoplasm subset",
        description=(
            "Every concept of the NCI Thesaurus Neoplasm (C3262) tree with its label; the "
            "Neoplasm Core concepts with their is-a hierarchy (the others sit directly under "
            "Neoplasm); synonyms and exact matches from the Disease Ontology."
        ),
        version=f"sha256-{digest[:12]}+doid-{do_version}",
        sources=[
            "https://github.com/progenetix/bycon",
            "https://github.com/NCI-Thesaurus/thesaurus-obo-edition",
            DO_REPO,
        ],
        licences=[CC_BY, CC0],
        rights=(
            "NCI Thesaurus, NCI EVS (CC BY 4.0), as extracted by progenetix (CC0). Synonyms "
            "from the Disease Ontology (CC0 1.0)."
        ),
    )
    root = to_iri(f"NCIT:{NCIT_ROOT}")
    for code in sorted(set(labels) | set(hierarchy)):
        concept = scheme.concept(to_iri(f"NCIT:{code}"))
        concept.notation = code
        old_label, parents = hierarchy.get(code, ("", set()))
        concept.pref.append(Label(labels.get(code) or old_label))
        if old_label:
            concept.add_alt(old_label)
        concept.broader = {to_iri(f"NCIT:{p}") for p in parents}
        if code != NCIT_ROOT and not parents:
            concept.broader.add(root)
    core = {to_iri(f"NCIT:{c}") for c in (*hierarchy, NCIT_ROOT)}
    scheme.collections.append(
        CollectionRecord(f"{VOCAB_BASE}ncit-neoplasm/core", "NCIt Neoplasm Core", core)
    )
    for term in do_terms:
        for curie, kind in do_links(term).items():
            if not curie.startswith("NCIT:") or to_iri(curie) not in scheme.concepts:
                continue
            concept = scheme.concepts[to_iri(curie)]
            (concept.exact if kind == "exact" else concept.close).add(to_iri(term.id))
            if kind == "exact":
                concept.add_alt(term.name)
                for text, scope in term.synonyms:
                    if scope == "EXACT":
                        concept.add_alt(text)
    return scheme


def icd10cm_scheme(path: Path, version: str) -> SchemeRecord:
    """ICD-10-CM chapter 2 (neoplasms): blocks nested by their code ranges, then categories."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    blocks = [r["code"] for r in rows if r["kind"] == "block"]
    scheme = SchemeRecord(
        key="icd10cm-neoplasms",
        title="ICD-10-CM chapter 2: Neoplasms (C00-D49)",
        description=(
            "Codes and titles of chapter 2 of ICD-10-CM (CDC/NCHS tabular list), with its "
            "hierarchy; blocks are nested by their code ranges."
        ),
        version=version,
        sources=[
            "https://www.cdc.gov/nchs/icd/icd-10-cm/",
            "https://pypi.org/project/simple-icd-10-cm/1.5.0/",
        ],
        licences=["https://www.cdc.gov/nchs/icd/icd-10-cm/"],
        rights=(
            "ICD-10-CM is a US Government publication (CDC/NCHS), freely distributed; the "
            "underlying ICD-10 is copyright World Health Organization."
        ),
    )
    for row in rows:
        is_block = row["kind"] == "block"
        code = _block_code(row["code"]) if is_block else row["code"]
        concept = scheme.concept(to_iri(f"ICD10CM:{code}"))
        concept.notation = code
        concept.pref.append(Label(row["description"]))
        parent = _enclosing_block(row["code"], blocks) if is_block else row["parent"]
        if parent:
            parent = _block_code(parent) if parent in blocks else parent
            concept.broader.add(to_iri(f"ICD10CM:{parent}"))
    return scheme


def _block_code(block: str) -> str:
    """A block's code as a range: a one-category block (C50) shares its category's code, so it
    is written C50-C50 (as BioPortal does)."""
    return block if "-" in block else f"{block}-{block}"


def _enclosing_block(block: str, blocks: list[str]) -> str | None:
    """The smallest other block whose code range holds this one (C00-C14 in C00-C75)."""
    start, end = _range(block)
    holders = []
    for other in blocks:
        low, high = _range(other)
        if other != block and low <= start and end <= high:
            holders.append((low, [-ord(ch) for ch in high], other))
    # nested ranges: the smallest holder starts last, and of those ends first
    return max(holders)[2] if holders else None


def _range(block: str) -> tuple[str, str]:
    start, _, end = block.partition("-")
    return start, end or start
