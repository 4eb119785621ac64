"""Change control: any change to the pipeline's shape shows up as a reviewed diff of this snapshot.

To accept a change: UPDATE_SNAPSHOTS=1 make test, then review and commit tests/snapshots/.
"""

import json
import os
from pathlib import Path

from pipelines.definitions import defs

SNAPSHOT = Path(__file__).parent.parent / "snapshots" / "asset_graph.json"


def _condition(condition) -> dict | None:
    """An automation condition as a tree of its own descriptions (stable across loads)."""
    if condition is None:
        return None
    return {"name": condition.get_label() or condition.description or type(condition).__name__, "of": [_condition(child) for child in condition.children]}


def graph_snapshot(definitions) -> dict:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "owners": sorted(node.owners),
            "automation": _condition(node.automation_condition),
            "deps": sorted(k.to_user_string() for k in node.parent_keys),
            "partitions": str(node.partitions_def) if node.partitions_def else None,
            "kinds": sorted(node.kinds),
            "checks": sorted(k.name for k in node.check_keys),
            "freshness": repr(node.freshness_policy) if node.freshness_policy else None,
            "backfill": str(node.backfill_policy) if node.backfill_policy else None,
        }
    checks = {}
    for key in sorted(graph.asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)):
        spec = graph.get_check_spec(key)
        checks[f"{key.asset_key.to_user_string()}:{key.name}"] = {
            "blocking": spec.blocking,
            "partitions": str(spec.partitions_def) if spec.partitions_def else None,
            "deps": sorted(dep.asset_key.to_user_string() for dep in spec.additional_deps),
        }
    jobs = {}
    for job in sorted(definitions.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in job.asset_layer.selected_asset_keys),
            "partitions": str(job.partitions_def) if job.partitions_def else None,
            "executor": job.executor_def.name,
            "tags": dict(sorted(job.tags.items())),
        }
    schedules = {
        s.name: {"cron": s.cron_schedule, "timezone": s.execution_timezone, "job": s.job_name, "default_status": s.default_status.value}
        for s in definitions.schedules or []
    }
    sensors = {
        s.name: {
            "jobs": sorted(t.job_name for t in s.targets),
            "default_status": s.default_status.value,
            "assets": sorted(k.to_user_string() for k in s.asset_selection.resolve(graph)) if s.asset_selection else [],
        }
        for s in definitions.sensors or []
    }
    return {"assets": assets, "asset_checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_asset_graph_matches_the_reviewed_snapshot():
    current = graph_snapshot(defs)
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    reviewed = json.loads(SNAPSHOT.read_text())
    assert current == reviewed, "the asset graph changed: review, then UPDATE_SNAPSHOTS=1 make test and commit the snapshot"
