"""Approvals, promotion, rollback and the ledger against a real MLflow registry (SQLite file and,
for reachability, a real `mlflow server` on loopback)."""

import dataclasses
import multiprocessing
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from resources.governance import Governance, RegistryUnavailable
from resources.registry import CHAMPION, PREVIOUS_CHAMPION, ModelRegistry
from riskcore.model import PDScorecard
from riskcore.promotion import PromotionRefused
from tests.signing import SERVICE, signed, write_allowed_signers

APPROVER = "model.risk.officer@example.com"
MODEL = "retail_pd"


def _approve(version: str, reason: str, approver: str = APPROVER, **kwargs):
    return signed("approve", MODEL, version, approver, reason, **kwargs)


def _rollback(reason: str, to_version: str | None = None, actor: str = APPROVER, **kwargs):
    return signed("rollback", MODEL, to_version, actor, reason, **kwargs)


def _governance(folder, **kwargs) -> Governance:
    """The shipped promotion policy, with keys of its identities in an allowed-signers file."""
    signers = folder / "allowed_signers"
    if not signers.exists():
        write_allowed_signers(signers)
    return Governance(ledger_url=f"sqlite:///{folder}/ledger.db", allowed_signers=str(signers), portfolio_file=str(folder / "portfolio.yaml"), **kwargs)


def _model():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=600), "c": rng.choice(["a", "b"], 600)})
    return PDScorecard(numeric=("x",), categorical=("c",)).fit(X, (rng.random(600) < 0.2).astype(int)), X


def _register(registry: ModelRegistry, gates_passed: bool, failed_gate: str = "adverse_impact_ratio") -> str:
    model, X = _model()
    registered = registry.register(
        model, X.head(20), params={}, metrics={}, tags={}, dataset=X.assign(y=0), dataset_digest="test", dataset_source="memory", run_name="test", target="y"
    )
    # What model_evaluation records (its computation is tested in test_pipeline and test_gates).
    gate = "0.9 pass (>= 0.8)" if gates_passed else "0.6 FAIL (>= 0.8)"
    registry.tag_version(registered.version, {f"gate.{failed_gate}": gate, "gates_passed": str(gates_passed).lower()})
    return registered.version


@pytest.fixture
def world(tmp_path):
    registry = ModelRegistry(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "artifacts"))
    governance = _governance(tmp_path, auto_approve="bootstrap")
    versions = [_register(registry, True), _register(registry, True), _register(registry, False)]
    governance.promote(registry, versions[0], None)
    return registry, governance, versions, tmp_path


def test_bootstrap_is_recorded_as_auto_approval(world):
    registry, governance, (v1, *_), _ = world
    assert registry.by_alias(CHAMPION).version == v1
    approval, promotion = governance.ledger().entries()
    assert approval.kind == "approval" and approval.actor.startswith("auto-approval (bootstrap")
    assert promotion.kind == "promotion" and promotion.payload["bootstrap"] is True


def test_an_unlisted_approver_is_refused_and_nothing_changes(world):
    registry, governance, (v1, v2, _), _ = world
    before = governance.ledger().verify().entries
    with pytest.raises(PromotionRefused, match=r"'mallory@example.com' may not approve under pd-model-promotion@2.1.0; who may: "):
        governance.promote(registry, v2, _approve(v2, "looks fine", "mallory@example.com"))
    assert registry.by_alias(CHAMPION).version == v1
    assert governance.ledger().verify().entries == before


def test_a_challenger_that_failed_a_gate_is_never_promoted_whatever_the_approval(world):
    registry, governance, (v1, _, v3), _ = world
    with pytest.raises(PromotionRefused, match=rf"retail_pd/{v3} cannot be promoted: failed gates: adverse_impact_ratio"):
        governance.promote(registry, v3, _approve(v3, "urgent"))
    assert registry.by_alias(CHAMPION).version == v1
    auto = Governance(ledger_url=governance.ledger_url, auto_approve="always")
    with pytest.raises(PromotionRefused, match="failed gates"):
        auto.promote(registry, v3, None)


def test_production_policy_needs_an_approver(world):
    registry, governance, (_, v2, _), _ = world
    production = Governance(ledger_url=governance.ledger_url)  # the policy file: auto_approve never
    with pytest.raises(PromotionRefused, match="needs an approver"):
        production.promote(registry, v2, None)


def test_approve_promote_then_roll_back(world):
    registry, governance, (v1, v2, _), _ = world
    governance.promote(registry, v2, _approve(v2, "better on every gate"))
    assert (registry.by_alias(CHAMPION).version, registry.by_alias(PREVIOUS_CHAMPION).version) == (v2, v1)
    assert registry.version_tags(v2)["approved_by"] == APPROVER
    governance.rollback(registry, _rollback("realised AUC below the floor"))
    assert (registry.by_alias(CHAMPION).version, registry.by_alias(PREVIOUS_CHAMPION).version) == (v1, v2)
    kinds = [(e.kind, e.subject.split("/")[1], e.actor) for e in governance.ledger().entries()]
    assert kinds[-3:] == [("approval", v2, APPROVER), ("promotion", v2, APPROVER), ("rollback", v1, APPROVER)]
    assert governance.ledger().entries(kind="rollback")[0].payload["from"] == f"retail_pd/{v2}"
    assert governance.ledger().verify().ok
    # no ping-pong: previous_champion is now the version just rolled back from
    with pytest.raises(PromotionRefused, match="was itself rolled back"):
        governance.rollback(registry, _rollback("the restored one is weak too"))
    assert registry.by_alias(CHAMPION).version == v1


def test_rollback_to_a_named_version_needs_passed_gates(world):
    registry, governance, (v1, v2, v3), _ = world
    with pytest.raises(PromotionRefused, match="failed gates"):
        governance.rollback(registry, _rollback("try v3", v3))
    with pytest.raises(PromotionRefused, match="no previous_champion"):
        governance.rollback(registry, _rollback("nothing before the first"))
    governance.rollback(registry, _rollback("pin v2", v2))
    assert registry.by_alias(CHAMPION).version == v2


def _promote(folder, tracking_uri: str, artifacts: str, version: str, start: float) -> None:
    time.sleep(max(0.0, start - time.time()))
    registry = ModelRegistry(tracking_uri=tracking_uri, artifact_location=artifacts)
    _governance(folder).promote(registry, version, _approve(version, f"race {version}"))


def test_two_racing_promotions_leave_one_champion_and_a_consistent_ledger(world):
    registry, governance, (v1, v2, _), tmp_path = world
    v4 = _register(registry, True)
    start = time.time() + 3
    racers = [
        multiprocessing.get_context("spawn").Process(target=_promote, args=(tmp_path, registry.tracking_uri, registry.artifact_location, v, start))
        for v in (v2, v4)
    ]
    for p in racers:
        p.start()
    for p in racers:
        p.join(180)
        assert p.exitcode == 0
    promotions = governance.ledger().entries(kind="promotion")[1:]
    assert sorted(p.subject for p in promotions) == sorted([f"retail_pd/{v2}", f"retail_pd/{v4}"])
    first, second = promotions
    # Serialised: the second saw the first as the champion it replaced.
    assert first.payload["previous"] == f"retail_pd/{v1}" and second.payload["previous"] == first.subject
    assert registry.by_alias(CHAMPION).label == second.subject
    assert registry.by_alias(PREVIOUS_CHAMPION).label == first.subject
    assert governance.ledger().verify().ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(tmp_path, port: int) -> subprocess.Popen:
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    server = subprocess.Popen(
        [
            mlflow,
            "server",
            "--backend-store-uri",
            f"sqlite:///{tmp_path}/server.db",
            "--artifacts-destination",
            str(tmp_path / "served"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return server
        time.sleep(0.5)
    server.kill()
    raise RuntimeError("mlflow server did not start within 120 s")


def _stop(server: subprocess.Popen) -> None:
    server.terminate()
    try:
        server.wait(60)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(30)


def test_registry_unreachable_fails_closed_and_records_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")  # a stopped server refuses at once; a loaded one may answer slowly
    subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "mlflow"), "db", "upgrade", f"sqlite:///{tmp_path}/server.db"], check=True, capture_output=True
    )  # migrate once, before the server (concurrent migrations fail)
    port = _free_port()
    server = _start_server(tmp_path, port)
    try:
        registry = ModelRegistry(tracking_uri=f"http://127.0.0.1:{port}")
        governance = _governance(tmp_path, auto_approve="bootstrap")
        v1, v2 = _register(registry, True), _register(registry, True)
        governance.promote(registry, v1, None)
        entries = governance.ledger().verify().entries
    finally:
        _stop(server)
    with pytest.raises(RegistryUnavailable, match="registry unreachable while changing retail_pd/.*: nothing changed"):
        governance.promote(registry, v2, _approve(v2, "while the registry is down"))
    assert governance.ledger().verify().entries == entries  # no approval, no promotion recorded
    server = _start_server(tmp_path, port)
    try:
        assert registry.by_alias(CHAMPION).version == v1  # unchanged
        governance.promote(registry, v2, _approve(v2, "registry is back"))
        assert registry.by_alias(CHAMPION).version == v2
    finally:
        _stop(server)


def _unchanged(registry, governance, champion: str, entries: int) -> None:
    assert registry.by_alias(CHAMPION).version == champion
    assert governance.ledger().verify().entries == entries


def test_a_listed_name_with_another_key_is_refused(world):
    """Typing an approver's name is not enough: the signature must be made by that approver's key."""
    registry, governance, (v1, v2, _), _ = world
    before = governance.ledger().verify().entries
    forged = _approve(v2, "looks fine", key_identity="mallory@example.com")  # signed with mallory's own key
    with pytest.raises(PromotionRefused, match=rf"'{APPROVER}' has no key in .*allowed_signers that made this signature"):
        governance.promote(registry, v2, forged)
    _unchanged(registry, governance, v1, before)


def test_a_signed_request_cannot_be_altered_reused_or_kept_for_later(world):
    registry, governance, (v1, v2, _), _ = world
    before = governance.ledger().verify().entries
    genuine = _approve(v2, "better on every gate")
    altered = dataclasses.replace(genuine, reason="better on every gate, and urgent")
    with pytest.raises(PromotionRefused, match="does not match the request"):
        governance.promote(registry, v2, altered)
    other_version = dataclasses.replace(genuine, version=v1)
    with pytest.raises(PromotionRefused, match=rf"signed request is for approve of retail_pd/{v1}, not approve of retail_pd/{v2}"):
        governance.promote(registry, v2, other_version)
    stale = signed("approve", MODEL, v2, APPROVER, "from last week", signed_at="2026-01-01T00:00:00Z")
    with pytest.raises(PromotionRefused, match="older than 24.0 h"):
        governance.promote(registry, v2, stale)
    _unchanged(registry, governance, v1, before)
    governance.promote(registry, v2, genuine)
    governance.rollback(registry, _rollback("back to v1"))
    with pytest.raises(PromotionRefused, match="already used"):
        governance.promote(registry, v2, genuine)  # replayed: the same signature approves nothing twice
    assert registry.by_alias(CHAMPION).version == v1
    # the ledger keeps what was signed: anyone can re-verify it with ssh-keygen and the allowed-signers file
    approval = governance.ledger().entries(kind="approval")[-1]
    assert approval.payload["signed_by"] == APPROVER and approval.payload["signed_request"] == genuine.message().decode()


def test_rollback_has_its_own_authority_and_a_service_only_its_permissions(world, tmp_path):
    registry, governance, (v1, v2, _), _ = world
    governance.promote(registry, v2, _approve(v2, "better"))
    before = governance.ledger().verify().entries
    with pytest.raises(PromotionRefused, match="'ops.engineer@example.com' may not rollback"):
        governance.rollback(registry, _rollback("I think so", actor="ops.engineer@example.com"))
    # the sensor's identity may roll back, never approve; typing its name without its key fails
    with pytest.raises(PromotionRefused, match=f"'{SERVICE}' may not approve"):
        governance.promote(registry, v1, _approve(v1, "automated", SERVICE))
    with pytest.raises(PromotionRefused, match="that made this signature"):
        governance.rollback(registry, _rollback("floor broken", actor=SERVICE, key_identity=APPROVER))
    _unchanged(registry, governance, v2, before)
    governance.rollback(registry, _rollback("floor broken", actor=SERVICE, from_version=v2))
    assert registry.by_alias(CHAMPION).version == v1
    assert governance.ledger().entries(kind="rollback")[-1].actor == SERVICE


def test_no_allowed_signers_file_means_no_human_action(world):
    registry, governance, (v1, v2, _), tmp_path = world
    unsigned = Governance(ledger_url=governance.ledger_url, portfolio_file=str(tmp_path / "portfolio.yaml"))
    with pytest.raises(PromotionRefused, match=r"portfolio.yaml: allowed_signers: not set"):
        unsigned.promote(registry, v2, _approve(v2, "no key list"))
    assert registry.by_alias(CHAMPION).version == v1


def test_the_head_anchored_in_the_registry_names_a_deleted_or_rewritten_tail(world):
    """An owner of the ledger's database drops the triggers and deletes the last entry, then rewrites
    one: the chain alone still verifies (a shorter chain), the head anchored in MLflow does not."""
    import sqlite3

    registry, governance, (v1, v2, _), tmp_path = world
    governance.promote(registry, v2, _approve(v2, "better"))
    assert governance.verify(registry)[0].ok
    anchored = registry.model_tag("ledger_head")
    assert anchored == "{}:{}".format(*governance.ledger().head())
    assert registry.version_tags(v2)["ledger_head"] == anchored  # and on the version it promoted
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        db.execute("DROP TRIGGER governance_ledger_no_delete")
        db.execute("DELETE FROM governance_ledger WHERE seq = (SELECT MAX(seq) FROM governance_ledger)")
    unkeyed = Governance(ledger_url=governance.ledger_url)
    assert unkeyed.ledger().verify().ok  # the chain that is left is valid on its own
    result, _ = governance.verify(registry)
    assert not result.ok and "were deleted" in result.problem


def test_an_alias_moved_behind_the_ledgers_back_is_not_a_governed_champion(world):
    from resources.governance import ChampionNotGoverned

    registry, governance, (v1, v2, _), _ = world
    assert governance.governed_champion(registry).version == v1
    registry.client().set_registered_model_alias(MODEL, CHAMPION, v2)  # MLflow credentials alone
    with pytest.raises(
        ChampionNotGoverned, match=rf"`champion` is retail_pd/{v2}, but the ledger's last promotion or rollback of retail_pd made retail_pd/{v1}"
    ):
        governance.governed_champion(registry)


def test_a_stale_rollout_rollback_request_changes_nothing_once_the_rollout_moved_on(world):
    """The rollout sensor's request names the canary version and step it judged: an advance, a
    promotion or a rollback between its tick and its run makes the run refuse, naming what changed."""
    registry, governance, (v1, v2, _), tmp_path = world
    governance = _governance(tmp_path, assignment_key="test-rollout-key")

    def sensor_request(version: str, step: int, why: str):
        return _rollback(why, actor=SERVICE, from_version=version, from_step=step)

    governance.start_canary(registry, signed("canary", MODEL, v2, APPROVER, "gates passed"))
    at_step_1 = sensor_request(v2, 1, "cell below the floor at 5%")
    governance.advance(registry, signed("advance", MODEL, v2, APPROVER, "5% held"), gates=[])
    entries = governance.ledger().verify().entries
    with pytest.raises(PromotionRefused, match=rf"canary cell of retail_pd/{v2} at step 1/3 \(5%\), but retail_pd/{v2} is at step 2/3 \(25%\)"):
        governance.rollback(registry, at_step_1)
    assert governance.rollout(registry).step == 2 and governance.ledger().verify().entries == entries

    at_step_2 = sensor_request(v2, 2, "cell below the floor at 25%")
    governance.advance(registry, signed("advance", MODEL, v2, APPROVER, "25% held"), gates=[])  # the last step: the promotion
    entries = governance.ledger().verify().entries
    with pytest.raises(PromotionRefused, match=rf"no rollout runs \(the last change: promotion of retail_pd/{v2} by {APPROVER}\)"):
        governance.rollback(registry, at_step_2)  # would otherwise have rolled the new champion back
    _unchanged(registry, governance, v2, entries)

    governance.start_canary(registry, signed("canary", MODEL, v1, APPROVER, "the old one again, for the scenario"))
    current, stale = sensor_request(v1, 1, "cell below the floor"), sensor_request(v1, 1, "cell below the floor, again")
    governance.rollback(registry, current)  # still in the cell at that step: the cell returns to the champion
    assert not governance.rollout(registry).active and governance.ledger().entries(kind="rollout_rollback")[-1].actor == SERVICE
    entries = governance.ledger().verify().entries
    with pytest.raises(PromotionRefused, match=rf"no rollout runs \(the last change: rollout_rollback of retail_pd/{v1} by {SERVICE}\)"):
        governance.rollback(registry, stale)
    _unchanged(registry, governance, v2, entries)


def test_canary_and_advance_from_the_command_line_are_signed_jobs_recorded_in_the_ledger(tmp_path):
    """`python -m pipelines.governance canary|advance ... --key` against a production deployment
    (SQLite registry and ledger given as its variables): each runs as a Dagster job on the
    instance and is recorded in the ledger; an identity the policy does not list is refused."""
    import dagster as dg

    from riskcore.ledger import Ledger
    from tests.signing import key_of

    registry = ModelRegistry(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", artifact_location=str(tmp_path / "artifacts"))
    v1, v2 = _register(registry, True), _register(registry, True)
    _governance(tmp_path, auto_approve="bootstrap").promote(registry, v1, None)
    (tmp_path / "dagster_home").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RISK_", "DAGSTER_", "MLFLOW_"))}
    env.update(
        RISK_ENV="production",
        RISK_LANDING_URL=str(tmp_path / "landing"),
        RISK_DATASETS_URL=str(tmp_path / "datasets"),
        MLFLOW_TRACKING_URI=registry.tracking_uri,
        RISK_LEDGER_URL=f"sqlite:///{tmp_path}/ledger.db",
        RISK_ALLOWED_SIGNERS=str(tmp_path / "allowed_signers"),
        RISK_PII_TOKEN_KEY="production-test-key-of-forty-characters!",
        RISK_ROLLOUT_KEY="production-test-rollout-key",
        DAGSTER_HOME=str(tmp_path / "dagster_home"),
        PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    )

    def cli(verb: str, identity: str, reason: str) -> subprocess.CompletedProcess:
        key = tmp_path / "keys" / identity
        key.parent.mkdir(exist_ok=True)
        key.write_text(key_of(identity)[0])
        key.chmod(0o600)
        args = [verb, "--version", v2, "--approver", identity, "--reason", reason, "--key", str(key)]
        return subprocess.run(
            [sys.executable, "-W", "ignore", "-m", "pipelines.governance", *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
        )

    ledger = Ledger.from_url(f"sqlite:///{tmp_path}/ledger.db")
    before = ledger.verify().entries
    refused = cli("canary", "ops.engineer@example.com", "I would like to try it")  # a key of its own, but no right to start one
    assert refused.returncode == 2 and "'ops.engineer@example.com' may not canary" in refused.stderr, refused.stderr[-2000:]
    assert ledger.verify().entries == before and registry.by_alias("canary") is None

    started = cli("canary", APPROVER, "gates passed: five per cent first")
    assert started.returncode == 0, started.stderr[-3000:]
    canary = ledger.entries(kind="rollout_canary")[-1]
    assert (canary.subject, canary.actor, canary.payload["signed_by"], canary.payload["step"]) == (f"{MODEL}/{v2}", APPROVER, APPROVER, 1)
    assert registry.by_alias("canary").version == v2 and registry.by_alias(CHAMPION).version == v1
    with dg.DagsterInstance.from_config(str(tmp_path / "dagster_home")) as instance:
        run = instance.get_run_by_id(canary.payload["dagster_run_id"])
        assert run.job_name == "retail_pd_canary_job" and run.is_success and run.tags["trigger"] == "make canary"

    # No month scored in the cell yet: the advance job runs, its gates refuse, the ledger says the rollout is where it was.
    early = cli("advance", APPROVER, "too early")
    assert early.returncode == 2 and "REFUSED (retail_pd_advance_job run" in early.stderr, early.stderr[-3000:]
    assert "gates failed: cell_decisions 0" in early.stderr
    assert [e.kind for e in ledger.entries()][-1] == "rollout_canary" and registry.by_alias("canary").version == v2
    unlisted = cli("advance", "ops.engineer@example.com", "push it")
    assert unlisted.returncode == 2 and "'ops.engineer@example.com' may not advance" in unlisted.stderr, unlisted.stderr[-2000:]
