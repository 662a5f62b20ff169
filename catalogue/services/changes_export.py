"""The changes feed as RDF for DCAT-AP harvesters: Activity Streams 2.0 activities in a
Hydra-paged collection, as LDES-style event streams publish them.

A page is a `hydra:Collection` (`{base}changes`) whose `hydra:member`s are activities, one per
dataset: `as:Create` / `as:Update` / `as:Delete` with `as:published` (when) and `as:object` the
catalogue record `{base}datasets/{provider}/{identifier}` (the IRI that serves the dataset's
DCAT-AP description). A created or updated record is a `dcat:CatalogRecord` with
`foaf:primaryTopic` the dataset, whose DCAT-AP description (dcat_export) is in the page; a deleted
one is an `as:Tombstone` with `as:deleted`. The view (`hydra:PartialCollectionView`) links
`hydra:first`, `hydra:next` while more changes follow, and `cim:resume`: where to ask for later
changes once the page is applied (its `after` is the page's high-water mark).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import quote, urlencode

from rdflib import FOAF, RDFS, Graph, Literal, Namespace, URIRef

from catalogue.dcat.namespaces import CIM, DCAT, DCTERMS, RDF, XSD
from catalogue.dcat.parser import dataset_nodes
from catalogue.dcat.serialiser import bind_prefixes
from catalogue.exceptions import QueryError
from catalogue.services.changes import ChangePage
from catalogue.services.dcat_export import HYDRA, dataset_description
from catalogue.services.runtime import Catalogue

AS = Namespace("https://www.w3.org/ns/activitystreams#")
ACTIVITIES = {"created": AS.Create, "updated": AS.Update, "deleted": AS.Delete}


def record_iri(base: str, provider_id: str, identifier: str) -> URIRef:
    """The catalogue record of a dataset: the export route serving its description."""
    return URIRef(f"{base}datasets/{quote(provider_id, safe='')}/{quote(identifier, safe='')}")


def changes_graph(
    catalogue: Catalogue,
    page: ChangePage,
    base: str,
    page_size: int,
    after: str | None,
    since: datetime | None,
) -> Graph:
    """One page of the feed as RDF (see the module doc); `base` ends with a slash."""
    graph = bind_prefixes(Graph())
    graph.bind("hydra", HYDRA)
    graph.bind("as", AS)
    graph.bind("foaf", FOAF)
    collection = URIRef(f"{base}changes")

    def link(cursor: str | None) -> URIRef:
        query: dict[str, str] = {"page_size": str(page_size)}
        if since is not None:
            query["since"] = since.isoformat()
        if cursor is not None:
            query["after"] = cursor
        return URIRef(f"{collection}?{urlencode(query)}")

    graph.add((collection, RDF.type, HYDRA.Collection))
    graph.add((collection, RDFS.label, Literal("Dataset changes", lang="en")))
    total = Literal(page.total, datatype=XSD.nonNegativeInteger)
    graph.add((collection, HYDRA.totalItems, total))
    view = link(after)
    graph.add((collection, HYDRA.view, view))
    graph.add((view, RDF.type, HYDRA.PartialCollectionView))
    graph.add((view, HYDRA.first, link(None)))
    if page.has_next:
        graph.add((view, HYDRA.next, link(page.high_water)))
    graph.add((view, CIM.resume, link(page.high_water)))
    for change in page.changes:
        activity = URIRef(f"{collection}#{change.seq}")
        record = record_iri(base, change.provider, change.identifier)
        when = Literal(change.changed_at.isoformat(), datatype=XSD.dateTime)
        graph.add((collection, HYDRA.member, activity))
        graph.add((activity, RDF.type, ACTIVITIES[change.kind]))
        graph.add((activity, AS.object, record))
        graph.add((activity, AS.published, when))
        graph.add((record, DCTERMS.identifier, Literal(change.identifier)))
        if change.kind == "deleted":
            graph.add((record, RDF.type, AS.Tombstone))
            graph.add((record, AS.formerType, DCAT.CatalogRecord))
            graph.add((record, AS.deleted, when))
            continue
        graph.add((record, RDF.type, DCAT.CatalogRecord))
        graph.add((record, DCTERMS.modified, when))
        try:
            description = dataset_description(catalogue, change.provider, change.identifier)
        except QueryError:
            continue  # gone since: its deletion follows in the feed
        for dataset in dataset_nodes(description):
            graph.add((record, FOAF.primaryTopic, dataset))
        graph += description
    return graph
