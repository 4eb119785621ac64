"""Performance estimated before labels mature, on real pipeline runs, back-tested once they have.

Each month is scored and monitored as it arrives (estimated_performance from the scores alone, the
retraining sensor reading it); months later the labels mature and model_performance records the
realised AUC and default rate beside the estimate. The economic shock (riskcore.synthetic) shifts
the features and, beyond them, raises every applicant's true PD: the estimate sees the first part
at once and cannot see the second (a break of calibration), which the back-test shows.
"""

import dagster as dg
import pytest

from pipelines.sensors import latest_metadata_by_month
from resources.alerts import AlertWebhook
from riskcore.months import months_between
from tests.dagster_instance import instance_for_test
from tests.integration.alerting import webhook_receiver
from tests.integration.worlds import World

SHOCK = "2023-08"
MONTHS = months_between("2023-05", "2023-10")


@pytest.fixture
def world(tmp_path, mlflow_uri, request):
    with instance_for_test() as instance:
        yield lambda scenario, start=SHOCK: World(tmp_path, mlflow_uri, instance, f"{request.node.name[5:40]}", scenario, start)


def _backtest(world: World) -> dict[str, dict]:
    """Months later: every month's labels have matured; month -> model_performance's record."""
    world.set_as_of("2023-11")  # one-month window: every month up to 2023-10 has matured
    for month in MONTHS:
        world.run("performance_job", month)
    return latest_metadata_by_month(world.instance, world.key("model_performance"))


def _table(records: dict[str, dict]) -> str:
    rows = [
        f"{m}  est AUC {r['estimated_auc']:.4f} [{r['estimated_auc_low']:.4f}, {r['estimated_auc_high']:.4f}]  realised {r['auc']:.4f}  error {r['auc_estimate_error']:+.4f}"
        f"  | est DR {r['estimated_default_rate']:.4f} [{r['estimated_default_rate_low']:.4f}, {r['estimated_default_rate_high']:.4f}]"
        f"  realised {r['default_rate']:.4f}  error {r['default_rate_estimate_error']:+.4f}"
        for m, r in sorted(records.items())
    ]
    return "\n".join(rows)


def _cycle(world: World) -> tuple[dict, list[dict]]:
    """Month by month as the data arrives, then one more sensor tick with nothing new; (decisions, alerts posted)."""
    with webhook_receiver() as (url, received):
        world.alerts = AlertWebhook(url=url)
        decisions = world.monitor(MONTHS)
        decisions["again"] = world.tick(world.sensor("drift_retraining_sensor"))
    return decisions, received


def test_without_drift_the_estimate_tracks_the_realised_auc_and_warns_of_nothing(world):
    stable = world("none")
    stable.train_baseline()
    decisions, alerts = _cycle(stable)
    assert not alerts and all(isinstance(d, dg.SkipReason) and "early warning" not in d.skip_message for d in decisions.values())
    records = _backtest(stable)
    print("\nscenario none\n" + _table(records))
    assert sorted(records) == MONTHS and all(r["estimated_before_labels"] for r in records.values())
    for month, record in records.items():  # 2,000 rows a month: the realised AUC alone varies by about 0.02
        assert abs(record["auc_estimate_error"]) < 0.06 and abs(record["default_rate_estimate_error"]) < 0.02, month


def test_an_economic_shock_is_seen_in_the_estimate_before_its_labels_mature(world):
    shocked = world("economic_shock")
    shocked.train_baseline()
    decisions, alerts = _cycle(shocked)
    assert not shocked.instance.get_materialized_partitions(shocked.key("model_performance"))  # no label has matured yet
    estimates = latest_metadata_by_month(shocked.instance, shocked.key("estimated_performance"))
    before = [m for m in MONTHS if m < SHOCK]
    # the estimated default rate leaves every pre-shock month's bounds in the shock month itself
    assert estimates[SHOCK]["estimated_default_rate"] > max(estimates[m]["estimated_default_rate_high"] for m in before)
    # the sensor alerts from the shock month on, once a month, and launches nothing for it
    assert "estimated default rate" in alerts[0]["text"] and "Alert only: no retraining or rollback" in alerts[0]["text"]
    assert all("early warning" not in decisions[m].skip_message for m in before)
    assert isinstance(decisions[SHOCK], dg.SkipReason) and "did not persist" in decisions[SHOCK].skip_message
    assert f"early warning for {SHOCK} alerted, not acted on" in decisions[SHOCK].skip_message
    assert decisions["2023-09"].tags["decision"] == "drift persisted 2 months (2023-08, 2023-09)"  # the launch is drift's
    warned = [a["text"].split(": estimated")[0].split()[-1] for a in alerts]
    assert warned == sorted(set(warned)) and min(warned) == SHOCK  # once per month warned about, none on the tick with nothing new
    # the back-test: the estimate saw the applicants change, not the economy that raised everyone's risk (calibration broke)
    records = _backtest(shocked)
    print("\nscenario economic_shock from " + SHOCK + "\n" + _table(records))
    for month in MONTHS[MONTHS.index(SHOCK) :]:
        assert records[month]["default_rate_estimate_error"] > 0.03 and not records[month]["default_rate_within_estimate_bounds"], month
        assert abs(records[month]["auc_estimate_error"]) < 0.06, month
