"""`sparql` sources: a SPARQL 1.1 endpoint asked for its datasets with a CONSTRUCT query.

The query is POSTed as a form (SPARQL 1.1 Protocol), or sent by GET, asking for Turtle first.
The default query returns every dcat:Dataset with its own triples and those of its distributions,
publisher and contact point, and of the blank nodes they point to, two levels deep. With
`page_size`, the query's `{{paging}}` marker becomes `LIMIT n OFFSET m` inside an ordered SELECT
of datasets, and pages are asked for until one comes back short.
"""

from __future__ import annotations

from typing import ClassVar, Literal, Self

from pydantic import Field, SecretStr, model_validator

from catalogue.dcat.parser import iter_parsed_datasets
from catalogue.domain.harvest import HarvestContext, HarvestSink, SourceConfig, SourceReport
from catalogue.net.http import Fetched, HttpClient, headers_field, plain_headers
from harvesters.rdf_http import RDF_ACCEPT, parse_fetched, put_page

PAGING = "{{paging}}"
"""Where `LIMIT n OFFSET m` goes in a query (removed when there is no `page_size`)."""

DEFAULT_QUERY = """\
PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
CONSTRUCT { ?dataset ?p0 ?o0 . ?s ?p ?o . }
WHERE {
  { SELECT DISTINCT ?dataset WHERE { ?dataset a dcat:Dataset } ORDER BY ?dataset {{paging}} }
  {
    ?dataset ?p0 ?o0 .
  } UNION {
    ?dataset dcat:distribution|dct:publisher|dcat:contactPoint ?s . ?s ?p ?o .
  } UNION {
    ?dataset ?q1 ?s . FILTER(isBlank(?s)) ?s ?p ?o .
  } UNION {
    ?dataset ?q1 ?b . FILTER(isBlank(?b)) ?b ?q2 ?s . FILTER(isBlank(?s)) ?s ?p ?o .
  } UNION {
    ?dataset dcat:distribution|dct:publisher|dcat:contactPoint ?d .
    ?d ?q1 ?s . FILTER(isBlank(?s)) ?s ?p ?o .
  } UNION {
    ?dataset dcat:distribution|dct:publisher|dcat:contactPoint ?d .
    ?d ?q1 ?b . FILTER(isBlank(?b)) ?b ?q2 ?s . FILTER(isBlank(?s)) ?s ?p ?o .
  }
}
"""


class SparqlSource(SourceConfig):
    """A SPARQL endpoint and the CONSTRUCT query that lists its datasets."""

    kind: Literal["sparql"]
    url: str = Field(pattern=r"^https?://", description="The SPARQL endpoint.")
    query: str | None = Field(
        default=None,
        description="A CONSTRUCT query returning each dcat:Dataset (with its rdf:type) and its "
        "description; `{{paging}}` marks where LIMIT/OFFSET go. Default: the harvester's own.",
    )
    page_size: int | None = Field(
        default=None, ge=1, description="Datasets per request; all at once when unset."
    )
    max_pages: int = Field(default=10_000, ge=1)
    method: Literal["post", "get"] = "post"
    default_graphs: list[str] = Field(
        default_factory=list, description="default-graph-uri parameters of each request."
    )
    headers: dict[str, SecretStr] = headers_field()

    @model_validator(mode="after")
    def _paging_marker(self) -> Self:
        if self.page_size is not None and self.query is not None and PAGING not in self.query:
            raise ValueError(f"a query paged by `page_size` needs the {PAGING} marker")
        return self


class SparqlHarvester:
    """Runs the CONSTRUCT query (a page at a time with `page_size`) into the sink."""

    config_model: ClassVar[type[SourceConfig]] = SparqlSource

    def harvest(self, source: SourceConfig, ctx: HarvestContext, sink: HarvestSink) -> SourceReport:
        assert isinstance(source, SparqlSource)
        report = SourceReport(ctx.provider.id, ctx.source_id, source.kind)
        template = source.query or DEFAULT_QUERY
        listed: set[str] = set()
        http = ctx.http
        for number in range(source.max_pages):
            paging = ""
            if source.page_size is not None:
                paging = f"LIMIT {source.page_size} OFFSET {number * source.page_size}"
            fetched = _ask(http, source, template.replace(PAGING, paging))
            parsed = parse_fetched(fetched, report.warn, empty_ok=True)
            found = list(iter_parsed_datasets(parsed, ctx.provider.id))
            new = put_page(sink, found, listed, report)
            if source.page_size is None or len(found) < source.page_size:
                return report
            if not new:
                report.incomplete(
                    f"{source.url}: page {number + 1} brought no new dataset; paging stopped"
                )
                return report
        report.incomplete(f"{source.url}: stopped at max_pages={source.max_pages}; paging stopped")
        return report


def _ask(http: HttpClient, source: SparqlSource, query: str) -> Fetched:
    form: dict[str, str | list[str]] = {"query": query}
    if source.default_graphs:
        form["default-graph-uri"] = list(source.default_graphs)
    headers = plain_headers(source.headers)
    if source.method == "get":
        return http.get(source.url, accept=RDF_ACCEPT, params=form, headers=headers)
    return http.post_form(source.url, form, accept=RDF_ACCEPT, headers=headers)
