"""Which registered version scores applications: the `champion` alias."""


import dagster as dg

from resources.registry import CHALLENGER, CHAMPION, ModelRegistry


@dg.asset(group_name="training", kinds={"mlflow"}, deps=["risk_model"])
def champion_model(registry: ModelRegistry) -> dg.MaterializeResult:
    """Bootstrap rule until promotion gates exist: the first registered version becomes champion;
    later candidates stay `challenger` and never replace a champion silently."""
    champion = registry.by_alias(CHAMPION)
    challenger = registry.by_alias(CHALLENGER)
    promoted = False
    if champion is None:
        if challenger is None:
            raise ValueError(f"no registered version of {registry.model_name} to make champion: materialise risk_model first")
        registry.set_alias(CHAMPION, challenger.version)
        champion, promoted = challenger, True
    return dg.MaterializeResult(
        metadata={
            "model_name": champion.name,
            "champion_version": champion.version,
            "mlflow_run_id": champion.run_id,
            "challenger_version": challenger.version if challenger else "",
            "promoted_now": promoted,
            "promotion_rule": "bootstrap: first registered version" if promoted else "unchanged: no promotion gates yet",
        }
    )
