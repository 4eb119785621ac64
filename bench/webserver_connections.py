"""What `make up`'s `--db-pool-recycle 0` costs: GraphQL requests to the topology's webserver
(a fresh PostgreSQL connection per checkout) against a second webserver on the same instance
with Dagster's default pool (one held connection per storage, which a PostgreSQL restart
breaks), measured in the same session, interleaved.

`python -m bench.webserver_connections [--requests 200]`: brings a topology up in a temporary
state folder on free ports (the topology tests' helper), and down again.
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _latencies(client, run_id: str, requests: int) -> list[float]:
    client.get_run_status(run_id)  # warm
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        client.get_run_status(run_id)
        times.append(time.perf_counter() - started)
    return times


def main(argv=None) -> int:
    from dagster_graphql import DagsterGraphQLClient

    from pipelines import topology as topo
    from tests.integration.topologies import finished, free_port, graphql_client, running_topology, wait

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-topology-") as folder, running_topology(Path(folder)) as (layout, _, _, _):
        pooled_port = free_port()
        pooled = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-webserver"), "-h", topo.HOST, "-p", str(pooled_port), "-w", str(layout.state / "workspace.yaml")],
            env=layout.environment(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            topo._wait_for(pooled_port, "the pooled webserver", 120, pooled)
            recycling = graphql_client(layout)
            run_id = recycling.submit_job_execution("monthly_ingestion_job", repository_location_name="risk_scoring", tags={"dagster/partition": "2023-01-01"})
            wait(lambda: finished(recycling, run_id), 300, "the run to query")  # measure an idle machine
            default = DagsterGraphQLClient(topo.HOST, port_number=pooled_port)
            ours, peer = [], []
            for _ in range(4):  # interleaved, so both see the same machine load
                ours += _latencies(recycling, run_id, args.requests // 4)
                peer += _latencies(default, run_id, args.requests // 4)
        finally:
            pooled.terminate()
            pooled.wait(30)
    ours_ms, peer_ms = statistics.median(ours) * 1000, statistics.median(peer) * 1000
    print(f"{'GraphQL run-status request, median of ' + str(len(ours)):48} {'ms':>7}")
    print(f"{'webserver --db-pool-recycle 0 (make up)':48} {ours_ms:7.1f}")
    print(f"{'peer: webserver, default pool':48} {peer_ms:7.1f}")
    print(f"ratio {ours_ms / peer_ms:.2f}; the price of a fresh loopback connection per checkout: {ours_ms - peer_ms:+.1f} ms a request")
    return 0


if __name__ == "__main__":
    sys.exit(main())
