"""Cohort feasibility: validate, count exactly in the cohort index, disclose every cell."""

from __future__ import annotations

from dataclasses import dataclass

from catalogue.domain.cohort import CohortQuery, ExactCounts
from catalogue.domain.models import Dataset, Provider
from catalogue.exceptions import QueryError
from catalogue.services.catalogue_view import CatalogueView
from catalogue.services.disclosure import DisclosedCount, disclose


@dataclass(frozen=True)
class Cell:
    """Disclosed subjects, studies and series of one cell of the answer."""

    subjects: DisclosedCount
    studies: DisclosedCount
    series: DisclosedCount


@dataclass(frozen=True)
class Feasibility:
    """A feasibility answer; only disclosed counts, never an exact one."""

    query: CohortQuery
    total: Cell
    by_provider: list[tuple[Provider, Cell]]
    by_dataset: list[tuple[Dataset, Cell]]


class FeasibilityService:
    def __init__(self, view: CatalogueView) -> None:
        self.view = view
        self.rules = view.catalogue.settings.disclosure

    def _cell(self, counts: ExactCounts) -> Cell:
        return Cell(
            subjects=disclose(counts.subjects, self.rules),
            studies=disclose(counts.studies, self.rules),
            series=disclose(counts.series, self.rules),
        )

    def run(self, query: CohortQuery) -> Feasibility:
        query = query.normalised()
        known = set(self.view.providers())
        unknown = [p for p in query.datasets.providers if p not in known]
        if unknown:
            raise QueryError(f"unknown provider(s): {', '.join(unknown)}")
        if query.datasets.datasets:
            known_datasets = self.view.dataset_identifiers()
            missing = [d for d in query.datasets.datasets if d not in known_datasets]
            if missing:
                raise QueryError(f"unknown dataset(s): {', '.join(missing)}")
        exact = self.view.catalogue.cohort.count(query)
        by_dataset = []
        for (provider_id, identifier), counts in exact.by_dataset.items():
            dataset = self.view.dataset(provider_id, identifier) or Dataset(
                provider_id=provider_id, identifier=identifier, iri="", title=identifier
            )
            by_dataset.append((dataset, self._cell(counts)))
        return Feasibility(
            query=query,
            total=self._cell(exact.total),
            by_provider=[
                (self.view.provider(p), self._cell(c)) for p, c in exact.by_provider.items()
            ],
            by_dataset=by_dataset,
        )
