"""The regulatory report's sections computed from the month's inputs."""

import dataclasses

from riskcore.report import build_report
from tests.unit.test_escaping import _report_inputs


def test_fairness_reads_each_scores_applicant_whatever_the_applications_order():
    """The groups come from each score's own application: the same ratios when the applications are
    written in the scores' order (taken as they are) or in another (joined on the id)."""
    inputs = _report_inputs()
    # groups that do not follow the decisions' pattern: read by position from shuffled rows, the rates would change
    applications = inputs.applications.assign(purpose=[f"group {i % 2}" for i in range(len(inputs.applications))])
    in_order = build_report(dataclasses.replace(inputs, applications=applications))["fairness"]["purpose"]
    shuffled = applications.sample(frac=1, random_state=3).reset_index(drop=True)
    assert build_report(dataclasses.replace(inputs, applications=shuffled))["fairness"]["purpose"] == in_order
    approved = inputs.scores["decision"].eq("approve").astype(float)
    expected = approved.groupby(applications["purpose"].to_numpy()).mean().round(4).to_dict()
    assert in_order["approval_rate_by_group"] == expected and len(set(expected.values())) == 2


def test_a_score_without_its_application_fails_the_report_instead_of_joining_an_empty_group():
    import pytest

    inputs = _report_inputs()
    without_first = inputs.applications.iloc[1:].sample(frac=1, random_state=3).reset_index(drop=True)
    with pytest.raises(KeyError, match="have no row to align with"):
        build_report(dataclasses.replace(inputs, applications=without_first))


def test_the_same_report_from_text_read_as_categories():
    """The report's inputs read text of a few values a month as categories (the scores' lineage,
    decisions and cells; the applications' lineage and groups): the same bytes as from plain text,
    whatever order the categories come in and whichever are unused."""
    import pandas as pd

    from riskcore.report import SCORE_CATEGORIES, canonical_json, render_html

    def as_categories(frame, columns):
        return frame.assign(**{c: pd.Categorical(frame[c], categories=sorted({*frame[c], "unused"}, reverse=True)) for c in columns})

    inputs = _report_inputs()
    canary = [i % 4 == 0 for i in range(len(inputs.scores))]
    scores = inputs.scores.assign(cell=["canary" if c else "champion" for c in canary], model_version=["2" if c else "1" for c in canary])
    plain = dataclasses.replace(inputs, scores=scores)
    categorical = dataclasses.replace(
        inputs,
        scores=as_categories(scores, SCORE_CATEGORIES),
        applications=as_categories(inputs.applications, ["contract_version", "source_file_sha256", "purpose"]),
    )
    docs = [build_report(i) for i in (plain, categorical)]
    assert canonical_json(docs[1]) == canonical_json(docs[0]) and render_html(docs[1]) == render_html(docs[0])
    assert [(c["cell"], c["decided_by"]) for c in docs[1]["rollout"]["cells"]] == [("canary", "2"), ("champion", "1")]
