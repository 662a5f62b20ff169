"""RDF namespaces of DCAT-AP, HealthDCAT-AP and the catalogue's imaging extension."""

from collections.abc import Mapping

import pyoxigraph as ox
from rdflib import BNode, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD
from rdflib.term import Node

HEALTHDCATAP = Namespace("http://healthdataportal.eu/ns/health#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
DCAT3 = Namespace(str(DCAT))
"""DCAT as an open namespace: rdflib's DCAT lacks the DCAT 3 terms (hasVersion, version...)."""
GEODCATAP = Namespace("http://data.europa.eu/930/")
CV = Namespace("http://data.europa.eu/m8g/")
"""Core Vocabularies (CPOV contact points), used by HealthDCAT-AP release 7 and later."""
DPV = Namespace("https://w3id.org/dpv#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
LOCN = Namespace("http://www.w3.org/ns/locn#")
CIM = Namespace("https://w3id.org/cancer-imaging-catalogue/ns#")
"""The imaging extension: cancer type, tumour site (body site) and modality of a dataset."""

PREFIXES: Mapping[str, str] = {
    prefix: str(namespace)
    for prefix, namespace in (
        ("dcat", DCAT3),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("vcard", VCARD),
        ("adms", ADMS),
        ("dcatap", DCATAP),
        ("skos", SKOS),
        ("spdx", SPDX),
        ("healthdcatap", HEALTHDCATAP),
        ("cv", CV),
        ("dpv", DPV),
        ("geodcatap", GEODCATAP),
        ("locn", LOCN),
        ("cim", CIM),
    )
}
"""Prefix -> namespace IRI of every vocabulary the profiles use: bound when writing, shown in
validation reports."""

FOLLOWED_PREDICATES: frozenset[URIRef] = frozenset(
    {
        DCAT.distribution,
        DCAT.contactPoint,
        DCTERMS.publisher,
        DCTERMS.creator,
        DCTERMS.rightsHolder,
        HEALTHDCATAP.hdab,
        HEALTHDCATAP.hdabCoordinator,
        GEODCATAP.custodian,
    }
)
"""IRI objects of these predicates are described inside a dataset's description (agents,
distributions); other IRIs are references."""


_FOLLOWED_IRIS = frozenset(str(p) for p in FOLLOWED_PREDICATES)


def described_within(predicate: Node | ox.NamedNode, obj: object) -> bool:
    """Whether `obj`'s own triples belong to the description holding (…, predicate, obj): blank
    nodes, and IRIs of FOLLOWED_PREDICATES (rdflib or Oxigraph terms). parser.describe and the
    profiles' codec both follow this."""
    if isinstance(obj, (BNode, ox.BlankNode)):
        return True
    if isinstance(obj, URIRef):
        return predicate in FOLLOWED_PREDICATES
    if isinstance(obj, ox.NamedNode) and isinstance(predicate, ox.NamedNode):
        return predicate.value in _FOLLOWED_IRIS
    return False


__all__ = [
    "ADMS",
    "CIM",
    "CV",
    "DCAT",
    "DCAT3",
    "DCATAP",
    "DCTERMS",
    "DPV",
    "FOAF",
    "FOLLOWED_PREDICATES",
    "GEODCATAP",
    "HEALTHDCATAP",
    "LOCN",
    "PREFIXES",
    "RDF",
    "RDFS",
    "SKOS",
    "SPDX",
    "VCARD",
    "XSD",
    "described_within",
]
