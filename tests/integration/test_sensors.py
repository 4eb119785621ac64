"""The drift retraining sensor on a real instance: decisions from drift_report records only, each
month's decision recorded once in the portfolio's governance ledger."""

import dagster as dg
import pytest

from pipelines.definitions import build_definitions, defs
from pipelines.jobs import job_name
from pipelines.sensors import retraining_subject
from resources.alerts import AlertWebhook
from tests.dagster_instance import instance_for_test
from tests.integration.portfolio_files import deployment, write_portfolio

PORTFOLIO = "retail_pd"


def _report(instance, month: str, share: float) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset_key=[PORTFOLIO, "drift_report"], partition=f"{month}-01", metadata={"drift_share": share})
    )


@pytest.fixture
def sensor_world(tmp_path, mlflow_uri):
    """The shipped portfolio's retraining sensor over a test deployment (its own ledger), and a tick
    that carries the cursor over as the daemon does."""
    resources = deployment(tmp_path, [write_portfolio(tmp_path / "portfolios", PORTFOLIO)], mlflow_uri)
    sensor = build_definitions(resources).get_sensor_def(f"{PORTFOLIO}_drift_retraining_sensor")
    with instance_for_test() as instance:

        def tick(cursor=None):
            with dg.build_sensor_context(instance=instance, cursor=cursor, resources={**resources, "alerts": AlertWebhook()}) as context:
                return sensor(context), context.cursor

        yield instance, tick, resources["portfolios"].named(PORTFOLIO).governance.ledger()


def test_retraining_is_launched_once_after_persistent_drift_and_not_inside_the_cooldown(sensor_world):
    instance, _tick, ledger = sensor_world
    for month in ("2024-04", "2024-05"):
        _report(instance, month, 0.0)
    result, cursor = _tick()
    assert isinstance(result, dg.SkipReason) and "did not persist" in result.skip_message
    _report(instance, "2024-06", 0.24)  # economic shock flagged at X...
    result, cursor = _tick(cursor)
    assert isinstance(result, dg.SkipReason) and "2024-05" in result.skip_message
    _report(instance, "2024-07", 0.24)  # ...launched at X + N - 1
    result, cursor = _tick(cursor)
    assert isinstance(result, dg.RunRequest) and result.run_key == "drift-retraining-2024-07"
    assert result.tags["decision"] == "drift persisted 2 months (2024-06, 2024-07)"
    result, cursor = _tick(cursor)  # the same state: no second launch
    assert isinstance(result, dg.SkipReason) and result.skip_message.startswith("cooldown")
    for month in ("2024-08", "2024-09"):  # a second shock inside the cooldown
        _report(instance, month, 0.5)
    result, cursor = _tick(cursor)
    assert isinstance(result, dg.SkipReason) and "cooldown" in result.skip_message
    # the ledger: one decision per newest month decided (2024-08 was never the newest at a tick), launch or skip and why
    decisions = {e.payload["month"]: e for e in ledger.entries(kind="retraining_decision")}
    assert list(decisions) == ["2024-05", "2024-06", "2024-07", "2024-09"]
    assert [decisions[m].payload["decision"] for m in decisions] == ["skip", "skip", "launch", "skip"]
    launch = decisions["2024-07"]
    assert launch.subject == retraining_subject(PORTFOLIO, "2024-07") and launch.actor == "drift_retraining_sensor"
    assert launch.payload["reason"] == "drift persisted 2 months (2024-06, 2024-07)" and launch.payload["run_key"] == "drift-retraining-2024-07"
    assert launch.payload["drift_shares"] == {"2024-07": 0.24, "2024-06": 0.24} and launch.payload["monitoring_policy"] == "pd-model-monitoring@2.1.0"
    assert decisions["2024-09"].payload["reason"].startswith("cooldown") and decisions["2024-05"].payload["reason"].startswith("drift did not persist")
    assert ledger.verify().ok


def test_a_decision_is_recorded_once_even_when_the_cursor_is_lost(sensor_world):
    instance, _tick, ledger = sensor_world
    _report(instance, "2024-04", 0.0)
    _, cursor = _tick()
    for _ in range(3):  # ticks on the same month add nothing
        _, cursor = _tick(cursor)
    _tick(None)  # nor does a tick that lost the cursor: the ledger already holds the month
    assert [e.subject for e in ledger.entries(kind="retraining_decision")] == [retraining_subject(PORTFOLIO, "2024-04")]


def test_the_daily_monitoring_schedule_measures_the_cohort_that_just_matured_until_it_is_measured():
    import datetime
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from tests.integration.portfolio_files import deployment, write_portfolio

    schedule = defs.get_schedule_def(f"{PORTFOLIO}_daily_monitoring_schedule")

    def tick(instance, day, calendar):
        """The schedule of the shipped portfolio, on a portfolio file with this calendar."""
        with TemporaryDirectory() as folder:
            file = write_portfolio(Path(folder), PORTFOLIO, calendar=calendar)
            # Entered, so its exit closes the instance it opens from the test instance's ref: left open,
            # that instance stayed Dagster's current defs-state storage after the test, and a later
            # test's definitions load in the same process failed on its dead weakref.
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=datetime.datetime(*day, 7, tzinfo=datetime.timezone.utc),
                repository_def=defs.get_repository_def(),
                resources={"portfolios": deployment(Path(folder), [file])["portfolios"]},
            ) as context:
                return schedule.evaluate_tick(context)

    def ScoringCalendar(as_of_month="last_complete", performance_window_months=12):  # noqa: N802 - the calendar section of a portfolio file
        return {"evaluation_month": as_of_month, "performance_window_months": performance_window_months, "out_of_time_months": 1}

    with instance_for_test() as instance:
        for day in (2, 17):  # any day of December 2025: labels of 2024-11 matured as of 2025-11
            request = tick(instance, (2025, 12, day), ScoringCalendar()).run_requests[0]
            assert request.partition_key == "2024-11-01" and request.run_key == f"{PORTFOLIO}-performance-2024-11"
        # the configured performance window decides the cohort
        assert tick(instance, (2025, 12, 2), ScoringCalendar(performance_window_months=6)).run_requests[0].partition_key == "2025-05-01"
        # a pinned calendar (a simulated world) is its own clock: the wall-clock day does not move it
        assert (
            tick(instance, (2026, 11, 25), ScoringCalendar(as_of_month="2023-04", performance_window_months=1)).run_requests[0].run_key
            == f"{PORTFOLIO}-performance-2023-03"
        )
        # a run under way for the cohort: the next day waits for it (a schedule's run key dedupes one tick only)
        run = instance.create_run_for_job(
            defs.resolve_job_def(job_name(PORTFOLIO, "performance_job")),
            status=dg.DagsterRunStatus.STARTED,
            tags={"dagster/run_key": f"{PORTFOLIO}-performance-2024-11"},
        )
        skipped = tick(instance, (2025, 12, 3), ScoringCalendar())
        assert not skipped.run_requests and f"being measured by run {run.run_id}" in skipped.skip_message
        instance.report_run_failed(run)  # it failed (the outcomes came late): the next day tries again
        assert tick(instance, (2025, 12, 4), ScoringCalendar()).run_requests[0].run_key == f"{PORTFOLIO}-performance-2024-11"
        # measured: no more runs for it, whatever the day
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=[PORTFOLIO, "model_performance"], partition="2024-11-01"))
        skipped = tick(instance, (2025, 12, 5), ScoringCalendar())
        assert not skipped.run_requests and skipped.skip_message.startswith("2024-11 was measured by run")
