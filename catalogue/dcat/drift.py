"""Known drift in harvested DCAT-AP, rewritten into the forms the profiles read, each change
recorded for the harvest report.

- namespace: http/https and '#'/'/' variants of the DCAT, DCTERMS, FOAF, vCard, ADMS, DCAT-AP,
  SKOS and HealthDCAT-AP namespaces (and DPV's old W3C namespace), in predicates and objects;
- term: HealthDCAT-AP properties under another name or case (minimumTypicalAge ->
  minTypicalAge, as release 8 names it);
- dcat-ap-2: what DCAT-AP 3 renamed (dct:hasVersion, dct:isVersionOf, owl:versionInfo,
  schema:startDate/endDate, the 2.1.1 shapes' dc:isReferencedBy) or re-coded (ADMS status codes
  of a distribution -> the EU distribution-status table);
- literal-iri: a string or xsd:anyURI literal holding an IRI where an IRI belongs (licence,
  access rights, theme, format, landing page, access/download URL...), e-mail addresses as
  mailto: IRIs;
- datatype: CURIE datatypes ("xsd:date"), byte sizes and HealthDCAT-AP counts and ages as
  xsd:nonNegativeInteger (DCAT-AP 2 typed byteSize xsd:decimal), flags as xsd:boolean.

`normalise` returns a new graph (the same one when nothing needs rewriting) and the changes;
normalising its result changes nothing. `has_drift` tells, on Oxigraph terms and without building
a graph, whether `normalise` could change anything: harvests skip it when it could not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from enum import StrEnum
from functools import lru_cache

import pyoxigraph as ox
from pydantic import BaseModel, ConfigDict
from rdflib import Graph, Literal, Namespace, URIRef
from rdflib.namespace import OWL
from rdflib.term import Node

from catalogue.dcat.namespaces import (
    ADMS,
    DCAT,
    DCAT3,
    DCATAP,
    DCTERMS,
    DPV,
    FOAF,
    HEALTHDCATAP,
    RDF,
    SKOS,
    VCARD,
    XSD,
)
from catalogue.dcat.profiles import CHAIN
from catalogue.dcat.profiles.codec import FieldSpec, field_specs
from catalogue.dcat.terms import Statement, rdflib_literal


class NormalisationKind(StrEnum):
    NAMESPACE = "namespace"
    TERM = "term"
    DCAT_AP_2 = "dcat-ap-2"
    LITERAL_IRI = "literal-iri"
    DATATYPE = "datatype"


class Normalisation(BaseModel):
    """One change: in `subject`'s triples, `before` became `after` (terms in N3). `predicate`
    names the property whose object changed, or is None when the predicate itself changed."""

    model_config = ConfigDict(frozen=True)

    kind: NormalisationKind
    subject: str
    predicate: str | None
    before: str
    after: str

    def __str__(self) -> str:
        where = self.subject if self.predicate is None else f"{self.subject} {self.predicate}"
        return f"{self.kind.value}: {where}: {self.before} -> {self.after}"


# --- namespaces ---------------------------------------------------------------------------

_CANONICAL = (DCAT, DCTERMS, FOAF, VCARD, ADMS, DCATAP, SKOS, HEALTHDCATAP, XSD)
_OLD_NAMESPACES = {"http://www.w3.org/ns/dpv#": str(DPV)}
_LOCAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _namespace_variants() -> list[tuple[str, str]]:
    """(variant, canonical) pairs, longest variant first."""
    pairs = dict(_OLD_NAMESPACES)
    for namespace in _CANONICAL:
        canonical = str(namespace)
        rest = canonical.split("://", 1)[1].rstrip("/#")
        for scheme in ("http", "https"):
            for separator in ("#", "/", "/#"):
                variant = f"{scheme}://{rest}{separator}"
                if variant != canonical:
                    pairs[variant] = canonical
    return sorted(pairs.items(), key=lambda pair: -len(pair[0]))


_VARIANTS = _namespace_variants()


@lru_cache(maxsize=65536)
def _canonical_iri(iri: str) -> str:
    for variant, canonical in _VARIANTS:
        if iri.startswith(variant) and _LOCAL_NAME.fullmatch(iri[len(variant) :]):
            return canonical + iri[len(variant) :]
    return iri


def _profile_specs() -> Iterator[FieldSpec]:
    """Every RDF-mapped field of every model of the profile chain."""
    for profile in CHAIN.profiles:
        for model in profile.models:
            yield from field_specs(model)


def _health_names() -> dict[str, str]:
    """Casefolded local name -> local name of the HealthDCAT-AP properties the profiles read,
    and of the older names real catalogues use for some."""
    names = {
        local.casefold(): local
        for spec in _profile_specs()
        if (local := spec.prop.predicate.removeprefix(str(HEALTHDCATAP))) != spec.prop.predicate
    }
    return names | {"minimumtypicalage": "minTypicalAge", "maximumtypicalage": "maxTypicalAge"}


_HEALTH_NAMES = _health_names()


@lru_cache(maxsize=4096)
def _health_term(iri: str) -> str:
    if not iri.startswith(str(HEALTHDCATAP)):
        return iri
    local = iri[len(HEALTHDCATAP) :]
    return str(HEALTHDCATAP) + _HEALTH_NAMES.get(local.casefold(), local)


# --- DCAT-AP 2 ----------------------------------------------------------------------------

_DCAT_CLASSES = frozenset(
    DCAT[name]
    for name in ("Catalog", "CatalogRecord", "Dataset", "DataService", "Distribution", "Resource")
) | {DCAT3.DatasetSeries}
_SCHEMA = ("http://schema.org/", "https://schema.org/")
_DC_IS_REFERENCED_BY = URIRef("http://purl.org/dc/elements/1.1/isReferencedBy")
"""Not a Dublin Core element, but what the DCAT-AP 2.1.1 shapes ask for."""
_ADMS_STATUS = "http://purl.org/adms/status/"
_DISTRIBUTION_STATUS = "http://publications.europa.eu/resource/authority/distribution-status/"
_STATUS_CODES = {
    "Completed": "COMPLETED",
    "Deprecated": "DEPRECATED",
    "UnderDevelopment": "DEVELOP",
    "Withdrawn": "WITHDRAWN",
}


class _Context:
    """What the contextual rules need to know about a graph's nodes."""

    def __init__(self, graph: Graph) -> None:
        self.dcat = {s for s, _, o in graph.triples((None, RDF.type, None)) if o in _DCAT_CLASSES}
        self.periods = set(graph.subjects(RDF.type, DCTERMS.PeriodOfTime)) | set(
            graph.objects(None, DCTERMS.temporal)
        )
        self.distributions = set(graph.subjects(RDF.type, DCAT.Distribution)) | set(
            graph.objects(None, DCAT.distribution)
        )


def _dcat_ap_2_predicate(subject: Node, predicate: URIRef, obj: Node, ctx: _Context) -> URIRef:
    if subject in ctx.dcat:
        if predicate == DCTERMS.hasVersion:
            return DCAT3.version if isinstance(obj, Literal) else DCAT3.hasVersion
        if predicate == DCTERMS.isVersionOf:
            return DCAT3.isVersionOf
        if predicate == OWL.versionInfo:
            return DCAT3.version
    if subject in ctx.periods and str(predicate).startswith(_SCHEMA):
        local = str(predicate).rsplit("/", 1)[1]
        if local in ("startDate", "endDate"):
            return DCAT[local]
    if predicate == _DC_IS_REFERENCED_BY:
        return DCTERMS.isReferencedBy
    return predicate


def _dcat_ap_2_object(subject: Node, predicate: URIRef, obj: Node, ctx: _Context) -> Node:
    if predicate == ADMS.status and subject in ctx.distributions and isinstance(obj, URIRef):
        code = _STATUS_CODES.get(str(obj).removeprefix(_ADMS_STATUS))
        if code is not None and str(obj).startswith(_ADMS_STATUS):
            return URIRef(_DISTRIBUTION_STATUS + code)
    return obj


# --- literals -----------------------------------------------------------------------------

_IRI_PREDICATES = frozenset(
    {
        DCTERMS.license,
        DCTERMS.accessRights,
        DCTERMS.format,
        DCTERMS.language,
        DCTERMS.conformsTo,
        DCTERMS.accrualPeriodicity,
        DCTERMS.spatial,
        DCTERMS.type,
        DCTERMS.isReferencedBy,
        DCAT.theme,
        DCAT.mediaType,
        DCAT.landingPage,
        DCAT.accessURL,
        DCAT.downloadURL,
        DCAT.endpointURL,
        DCAT.endpointDescription,
        DCAT.compressFormat,
        DCAT.packageFormat,
        DCATAP.applicableLegislation,
        DCATAP.availability,
        DCATAP.hvdCategory,
        ADMS.status,
        FOAF.homepage,
        FOAF.page,
        VCARD.hasURL,
        HEALTHDCATAP.healthCategory,
        HEALTHDCATAP.healthTheme,
        HEALTHDCATAP.hasCodingSystem,
    }
)
_MAILTO_PREDICATES = frozenset({FOAF.mbox, VCARD.hasEmail})
_IRI = re.compile(r"(?:https?|ftp)://[^\s<>\"{}|\\^`]+|(?:urn|mailto|tel):[^\s<>\"]+")
_EMAIL = re.compile(r"(?:mailto:)?([^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+)")
_STRINGS = frozenset({None, XSD.string, XSD.anyURI})


def _typed_predicates(datatype: URIRef) -> frozenset[URIRef]:
    """The predicates of the profiles' fields of one datatype (their `int` and `bool` fields)."""
    return frozenset(
        URIRef(spec.prop.predicate)
        for spec in _profile_specs()
        if spec.prop.datatype == str(datatype)
    )


_COUNT_PREDICATES = _typed_predicates(XSD.nonNegativeInteger)
"""Byte sizes, and HealthDCAT-AP counts and ages."""
_NUMERIC = frozenset(
    {None, XSD.string, XSD.decimal, XSD.integer, XSD.int, XSD.long, XSD.short}
    | {XSD.unsignedInt, XSD.unsignedLong, XSD.positiveInteger, XSD.double, XSD.float}
)
_WHOLE = re.compile(r"\+?([0-9]+)(?:\.0*)?")
_FLAG_PREDICATES = _typed_predicates(XSD.boolean)


def _literal_iri(predicate: URIRef, literal: Literal) -> URIRef | None:
    if literal.language is not None or literal.datatype not in _STRINGS:
        return None
    value = str(literal).strip()
    if predicate in _MAILTO_PREDICATES:
        email = _EMAIL.fullmatch(value)
        return URIRef("mailto:" + email.group(1)) if email else None
    return URIRef(value) if predicate in _IRI_PREDICATES and _IRI.fullmatch(value) else None


def _datatype(predicate: URIRef, literal: Literal) -> Literal | None:
    datatype = literal.datatype
    if datatype is not None:
        fixed = _canonical_iri(_curie_datatype(str(datatype)))
        if fixed != str(datatype):
            return Literal(str(literal), datatype=URIRef(fixed))
    if literal.language is not None:
        return None
    value = str(literal).strip()
    if predicate in _COUNT_PREDICATES and datatype in _NUMERIC:
        whole = _WHOLE.fullmatch(value)
        if whole:
            return Literal(str(int(whole.group(1))), datatype=XSD.nonNegativeInteger)
    if (
        predicate in _FLAG_PREDICATES
        and datatype in _STRINGS
        and value.lower() in ("true", "false")
    ):
        return Literal(value.lower(), datatype=XSD.boolean)
    return None


def _curie_datatype(iri: str) -> str:
    if iri.startswith("xsd:") and _LOCAL_NAME.fullmatch(iri[4:]):
        return str(XSD) + iri[4:]
    return iri


# --- the pass -----------------------------------------------------------------------------


def _rewrite(
    subject: Node, predicate: URIRef, obj: Node, ctx: _Context, found: list[Normalisation]
) -> tuple[URIRef, Node]:
    def record(kind: NormalisationKind, on: URIRef | None, before: Node, after: Node) -> None:
        on_n3 = None if on is None else on.n3()
        found.append(
            Normalisation(
                kind=kind,
                subject=subject.n3(),
                predicate=on_n3,
                before=before.n3(),
                after=after.n3(),
            )
        )

    for kind, rename in (
        (NormalisationKind.NAMESPACE, _canonical_iri),
        (NormalisationKind.TERM, _health_term),
    ):
        renamed = URIRef(rename(str(predicate)))
        if renamed != predicate:
            record(kind, None, predicate, renamed)
            predicate = renamed
    if isinstance(obj, URIRef):
        renamed = URIRef(_canonical_iri(str(obj)))
        if renamed != obj:
            record(NormalisationKind.NAMESPACE, predicate, obj, renamed)
            obj = renamed
    renamed = _dcat_ap_2_predicate(subject, predicate, obj, ctx)
    if renamed != predicate:
        record(NormalisationKind.DCAT_AP_2, None, predicate, renamed)
        predicate = renamed
    recoded = _dcat_ap_2_object(subject, predicate, obj, ctx)
    if recoded != obj:
        record(NormalisationKind.DCAT_AP_2, predicate, obj, recoded)
        obj = recoded
    if isinstance(obj, Literal):
        retyped = _datatype(predicate, obj)
        if retyped is not None and retyped != obj:
            record(NormalisationKind.DATATYPE, predicate, obj, retyped)
            obj = retyped
        iri = _literal_iri(predicate, obj)  # a URIRef never equals the Literal it replaces
        if iri is not None:
            record(NormalisationKind.LITERAL_IRI, predicate, obj, iri)
            obj = iri
    return predicate, obj


def _pass(graph: Graph) -> tuple[Graph, list[Normalisation]]:
    """One rewriting pass; the graph itself, not a copy, when nothing needs rewriting."""
    ctx = _Context(graph)
    found: list[Normalisation] = []
    rewritten: list[tuple[tuple[Node, Node, Node], tuple[Node, Node, Node]]] = []
    for subject, predicate, obj in graph:
        if not isinstance(predicate, URIRef):
            continue
        new_predicate, new_obj = _rewrite(subject, predicate, obj, ctx, found)
        if new_predicate != predicate or new_obj != obj:
            rewritten.append(((subject, predicate, obj), (subject, new_predicate, new_obj)))
    if not rewritten:
        return graph, found
    out = Graph()
    out += graph
    for before, _ in rewritten:
        out.remove(before)
    for _, after in rewritten:
        out.add(after)
    return out, found


_MAX_PASSES = 4


def normalise(graph: Graph) -> tuple[Graph, list[Normalisation]]:
    """`graph` with its known drift rewritten (a new graph; `graph` itself when there is none),
    and every change made, once."""
    current = graph
    changes: dict[Normalisation, None] = {}
    for _ in range(_MAX_PASSES):
        current, found = _pass(current)
        if not found:
            break
        changes.update(dict.fromkeys(found))
    _bind(current, list(graph.namespaces()))
    order = list(NormalisationKind)
    return current, sorted(
        changes,
        key=lambda n: (order.index(n.kind), n.subject, n.predicate or "", n.before, n.after),
    )


def _bind(graph: Graph, namespaces: Iterable[tuple[str, URIRef]]) -> None:
    for prefix, namespace in namespaces:
        graph.bind(prefix, Namespace(_canonical_namespace(str(namespace))), override=True)


def _canonical_namespace(namespace: str) -> str:
    for variant, canonical in _VARIANTS:
        if namespace == variant:
            return canonical
    return namespace


# --- the guard ----------------------------------------------------------------------------

_CONTEXTUAL_PREDICATES = frozenset(
    str(p) for p in (DCTERMS.hasVersion, DCTERMS.isVersionOf, OWL.versionInfo, _DC_IS_REFERENCED_BY)
)
"""Predicates the DCAT-AP 2 rules may rename (depending on the subject: the guard does not ask)."""
_LITERAL_PREDICATES = frozenset(
    str(p) for p in _IRI_PREDICATES | _MAILTO_PREDICATES | _COUNT_PREDICATES | _FLAG_PREDICATES
)
_PLAIN_DATATYPES = frozenset({str(XSD.string), str(RDF.langString)})


@lru_cache(maxsize=4096)
def _predicate_may_drift(iri: str) -> bool:
    return (
        _canonical_iri(iri) != iri
        or _health_term(iri) != iri
        or iri in _CONTEXTUAL_PREDICATES
        or iri.startswith(_SCHEMA)
    )


@lru_cache(maxsize=4096)
def _datatype_drifts(iri: str) -> bool:
    return _canonical_iri(_curie_datatype(iri)) != iri


_RULE_DATATYPES = frozenset(str(d) for d in _STRINGS | _NUMERIC if d is not None)
"""Datatypes of literals the literal rules may rewrite (none rewrites a language string)."""


def _literal_drifts(predicate: str, obj: ox.Literal) -> bool:
    if obj.language or obj.datatype.value not in _RULE_DATATYPES:
        return False
    literal = rdflib_literal(obj.value, obj.datatype.value, obj.language)
    rule_predicate = URIRef(predicate)
    for fix in (_datatype, _literal_iri):
        fixed = fix(rule_predicate, literal)
        if fixed is not None and fixed != literal:
            return True
    return False


def has_drift(statements: Iterable[Statement]) -> bool:
    """False when `normalise` would certainly change nothing in the graph of these triples;
    True when it might (it then decides)."""
    for statement in statements:
        predicate = statement.predicate.value
        if _predicate_may_drift(predicate):
            return True
        obj = statement.object
        if isinstance(obj, ox.NamedNode):
            if _canonical_iri(obj.value) != obj.value or obj.value.startswith(_ADMS_STATUS):
                return True
        elif isinstance(obj, ox.Literal):
            datatype = obj.datatype.value
            if datatype not in _PLAIN_DATATYPES and _datatype_drifts(datatype):
                return True
            if predicate in _LITERAL_PREDICATES and _literal_drifts(predicate, obj):
                return True
    return False
