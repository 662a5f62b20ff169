"""Disclosure rules for dataset summaries."""

from catalogue.config import DisclosureSettings
from catalogue.domain.cohort import ExactSummary
from catalogue.services.summaries import disclosed_summary

RULES = DisclosureSettings()


def test_small_datasets_publish_nothing_identifying() -> None:
    exact = ExactSummary(
        subjects=7, studies=12, age_min=33, age_max=81, subjects_by_modality={"CT": 7}
    )
    summary = disclosed_summary(exact, RULES)
    assert summary.number_of_unique_individuals is None
    assert summary.number_of_records == 10
    assert (summary.min_typical_age, summary.max_typical_age) == (None, None)
    assert summary.modalities == ()


def test_ages_widen_and_rare_values_drop() -> None:
    exact = ExactSummary(
        subjects=120,
        studies=301,
        age_min=33,
        age_max=81,
        subjects_by_modality={"CT": 120, "PT": 9, "MR": 10},
        subjects_by_manufacturer={"ge": 3},
    )
    summary = disclosed_summary(exact, RULES)
    assert summary.number_of_unique_individuals == 120 and summary.number_of_records == 300
    assert (summary.min_typical_age, summary.max_typical_age) == (30, 84)
    assert summary.modalities == ("CT", "MR")
    assert summary.manufacturers == ()
