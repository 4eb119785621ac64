"""Above the training policy's max_rows, the candidate is fitted on a seeded, weighted sample, and the
version's lineage (MLflow params, version tags, model card) names it (issue 16)."""

import pytest

from resources.registry import CHALLENGER
from riskcore.training_policy import DEFAULT_TRAINING_POLICY
from tests.dagster_instance import instance_for_test
from tests.integration.worlds import World


@pytest.fixture
def world(tmp_path, mlflow_uri):
    # The shipped policy with a sample smaller than the 3 train months of 2,000 rows.
    policy = tmp_path / "training.yaml"
    policy.write_text(DEFAULT_TRAINING_POLICY.read_text().replace("max_rows: 1000000", "max_rows: 2500"))
    with instance_for_test() as instance:
        yield World(tmp_path, mlflow_uri, instance, "training_sample", policies={"training": str(policy)})


def test_a_sampled_candidate_records_its_sample_in_params_tags_and_card(world):
    world.train_baseline()
    version = world.registry.by_alias(CHALLENGER) or world.registry.by_alias("champion")
    params = world.registry.client().get_run(version.run_id).data.params
    assert params["sample"] == "stratified by outcome, weighted" and params["sample_rows"] == "2500" and params["sample_seed"] == "20240101"
    assert int(params["sample_train_rows"]) > 5000 and len(params["sample_ids_sha256"]) == 64
    assert params["training_policy"].startswith("pd-training@")
    tag = world.registry.version_tags(version.version)["training_sample"]
    assert tag.startswith("2,500 of ") and params["sample_ids_sha256"][:16] in tag
    assert tag in world.registry.read_text(version.run_id, "model_card.md")
    # Weighted back to the window: the candidate's PDs are the train months' default rate, not the sample's.
    metrics = world.registry.run_metrics(version.run_id)
    assert abs(metrics["train_mean_pd"] - metrics["train_default_rate"]) < 0.01
