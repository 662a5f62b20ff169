"""Dataset summaries from harvested features, disclosure-controlled, into the RDF store.

The catalogue is public, so a summary publishes only what disclosure control allows: counts are
disclosed like any feasibility count, the age range is widened to 5-year bounds and only shown
when the dataset's subjects reach the threshold, and a modality, body part or manufacturer is
listed only when at least `threshold` subjects have it.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from rdflib import Graph, Literal, URIRef

from catalogue.config import DisclosureSettings
from catalogue.dcat.digest import description_digest
from catalogue.dcat.drift import normalise
from catalogue.dcat.namespaces import CIM, DCAT, HEALTHDCATAP, RDF, XSD
from catalogue.dcat.parser import dataset_nodes
from catalogue.dcat.serialiser import bind_prefixes
from catalogue.domain.cohort import ExactSummary
from catalogue.domain.identifiers import dataset_graph, summary_graph, summary_prefix
from catalogue.domain.models import DatasetSummary
from catalogue.services.disclosure import disclose
from catalogue.services.runtime import Catalogue

AGE_BAND = 5


def disclosed_summary(exact: ExactSummary, rules: DisclosureSettings) -> DatasetSummary:
    """The publishable form of an exact summary."""
    subjects = disclose(exact.subjects, rules)
    studies = disclose(exact.studies, rules)
    enough = not subjects.suppressed and exact.subjects >= rules.threshold

    def common(counts: dict[str, int]) -> tuple[str, ...]:
        return tuple(sorted(v for v, n in counts.items() if n >= rules.threshold)) if enough else ()

    age_min = age_max = None
    if enough and exact.age_min is not None and exact.age_max is not None:
        age_min = exact.age_min // AGE_BAND * AGE_BAND
        age_max = -(-(exact.age_max + 1) // AGE_BAND) * AGE_BAND - 1
    return DatasetSummary(
        number_of_unique_individuals=subjects.value,
        number_of_records=studies.value,
        min_typical_age=age_min,
        max_typical_age=age_max,
        modalities=common(exact.subjects_by_modality),
        body_parts=common(exact.subjects_by_body_part),
        manufacturers=common(exact.subjects_by_manufacturer),
    )


def summary_rdf(node: URIRef, summary: DatasetSummary) -> Graph:
    """A summary as HealthDCAT-AP / imaging-extension triples about the dataset node."""
    graph = bind_prefixes(Graph())
    graph.add((node, RDF.type, DCAT.Dataset))
    numbers = (
        (HEALTHDCATAP.numberOfUniqueIndividuals, summary.number_of_unique_individuals),
        (HEALTHDCATAP.numberOfRecords, summary.number_of_records),
        (HEALTHDCATAP.minTypicalAge, summary.min_typical_age),
        (HEALTHDCATAP.maxTypicalAge, summary.max_typical_age),
    )
    for predicate, number in numbers:
        if number is not None:
            graph.add((node, predicate, Literal(number, datatype=XSD.nonNegativeInteger)))
    for predicate, values in (
        (CIM.modality, summary.modalities),
        (CIM.bodyPartExamined, summary.body_parts),
        (CIM.manufacturer, summary.manufacturers),
    ):
        for value in values:
            graph.add((node, predicate, Literal(value)))
    return graph


def parse_summary(graph: Graph) -> DatasetSummary | None:
    """The summary held in a summary graph, if any."""
    nodes = dataset_nodes(graph)
    if not nodes:
        return None
    node = nodes[0]

    def number(predicate: URIRef) -> int | None:
        value = graph.value(node, predicate)
        return int(str(value)) if value is not None else None

    def texts(predicate: URIRef) -> tuple[str, ...]:
        return tuple(sorted(str(v) for v in graph.objects(node, predicate)))

    return DatasetSummary(
        number_of_unique_individuals=number(HEALTHDCATAP.numberOfUniqueIndividuals),
        number_of_records=number(HEALTHDCATAP.numberOfRecords),
        min_typical_age=number(HEALTHDCATAP.minTypicalAge),
        max_typical_age=number(HEALTHDCATAP.maxTypicalAge),
        modalities=texts(CIM.modality),
        body_parts=texts(CIM.bodyPartExamined),
        manufacturers=texts(CIM.manufacturer),
    )


def write_summaries(
    catalogue: Catalogue,
    provider_id: str,
    known_iri: Callable[[str], str | None] = lambda identifier: None,
    before_write: Callable[[set[str]], None] | None = None,
) -> dict[str, DatasetSummary]:
    """Bring a provider's summary graphs up to date with its features and return the summaries
    they now hold, by dataset identifier. A summary is about the dataset's node: its IRI as
    `known_iri` gives it, else as the dataset's stored graph has it. The identifiers of the
    datasets whose summary changes (written, or dropped) are first given to `before_write`."""
    rules = catalogue.settings.disclosure
    prefix = summary_prefix(provider_id)
    stored = set(catalogue.store.graph_names(prefix))
    summaries = {
        identifier: disclosed_summary(exact, rules)
        for identifier, exact in catalogue.cohort.summaries(provider_id).items()
    }
    graphs: dict[str, Graph] = {}
    for identifier, summary in summaries.items():
        name = summary_graph(provider_id, identifier)
        node = _dataset_node(catalogue, provider_id, identifier, known_iri)
        graph = summary_rdf(node, summary)
        # the store reads numbers back as xsd:integer; normalised, they compare as written
        if name not in stored or description_digest(graph) != description_digest(
            normalise(catalogue.store.graph(name))[0]
        ):
            graphs[name] = graph
        stored.discard(name)
    for name in stored:  # datasets without features any more
        graphs[name] = Graph()
    if graphs:
        if before_write is not None:
            before_write({unquote(name.removeprefix(prefix)) for name in graphs})
        catalogue.store.replace_graphs(graphs)
    return summaries


def _dataset_node(
    catalogue: Catalogue,
    provider_id: str,
    identifier: str,
    known_iri: Callable[[str], str | None],
) -> URIRef:
    """The node a dataset's summary is about: its IRI when known, else the first dataset node
    of its stored graph, else a made-up one (features without a description)."""
    iri = known_iri(identifier)
    if iri is None:
        nodes = dataset_nodes(catalogue.store.graph(dataset_graph(provider_id, identifier)))
        iri = str(nodes[0]) if nodes else f"urn:catalogue:dataset:{provider_id}:{identifier}"
    return URIRef(iri)
