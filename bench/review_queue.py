"""The review page under a month of 20,000 referrals (issue 15: the queue page and one decision
each under 200 ms at the median), through the real server: gunicorn on 127.0.0.1 over a SQLite
governance database, an officer's logged-in httpx session with its CSRF token.

`python -m bench.review_queue [--referrals 20000] [--requests 200]`. Floors measured in the same
run: the queue's SQL (ReviewStore.queue in this process, no HTTP) and a static file through the
same server (HTTP, gunicorn and Flask, no database).
"""

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MONTH, OFFICER, PASSWORD = "2024-12", "bench.officer@example.com", "a long benchmark password"


def _rows(n: int) -> list[dict]:
    return [
        {
            "application_id": f"APP-202412-{i:06d}",
            "month": MONTH,
            "model_decision": "refer",
            "pd": 0.12 + (i % 60) / 1000,
            "points": 530 + i % 20,
            "reason_codes": json.dumps(["R03", "R07"]),
            "model_version": "4",
            "policy_version": "retail-loan-decision@1.0.0",
            "amount": 5_000.0 + i % 20_000,
            "segment": ("online", "branch", "broker")[i % 3],
            "features": json.dumps({"loan_amount": 5_000.0 + i % 20_000, "channel": ("online", "branch", "broker")[i % 3], "annual_income": 30_000 + i}),
            "queued_at": f"2025-01-{1 + i * 28 // n:02d}T09:00:00+00:00",
            "source": "referred",
        }
        for i in range(n)
    ]


def _stats(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):7.2f} ms   p95 {ms[int(len(ms) * 0.95) - 1]:7.2f} ms   (n={len(ms)})"


def _timed(call, n: int) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def main(argv=None) -> int:
    import httpx

    from pipelines.review import add_officer
    from pipelines.topology import _new_signing_key, public_key_line
    from riskcore.ledger import Ledger
    from riskcore.review_policy import load_review_policy
    from riskcore.review_store import ReviewStore

    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-review-") as folder:
        data = Path(folder)
        add_officer(str(data / "keys" / "reviewers"), OFFICER, PASSWORD)
        key = _new_signing_key()
        (data / "keys" / "allowed_signers").write_text(f'review_service namespaces="risk-governance" {public_key_line(key, "review_service")}\n')
        (data / "governance").mkdir()
        store = ReviewStore(Ledger.from_url(f"sqlite:///{data}/governance/ledger.db"), "retail_pd", load_review_policy())
        started = time.perf_counter()
        store.enqueue(_rows(args.referrals))
        print(f"{args.referrals:,} referrals of {MONTH} queued in {time.perf_counter() - started:.1f} s")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_")} | {
            "RISK_DATA_DIR": str(data),
            "RISK_ENV": "local",
            "RISK_REVIEW_SIGNING_KEY": key,
        }
        command = [sys.executable, "-m", "pipelines.review", "--portfolio", "retail_pd", "serve", "--port", str(port), "--workers", "2"]
        server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{url}/login").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.2)
            client = httpx.Client(base_url=url)
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get("/login").text).group(1)
            assert client.post("/login", data={"identity": OFFICER, "password": PASSWORD, "csrf_token": token}).status_code == 302
            n = args.requests
            print(f"review page, {args.referrals:,} referrals in {MONTH}, gunicorn (2 workers) on 127.0.0.1, SQLite, one logged-in session")
            print(f"  floor: the queue's SQL, first page (no HTTP)  {_stats(_timed(lambda: store.queue(MONTH, 1, 50), n))}")
            print(f"  floor: static stylesheet over HTTP            {_stats(_timed(lambda: client.get('/static/review.css'), n))}")
            print(f"  queue page, first page                        {_stats(_timed(lambda: client.get('/', params={'month': MONTH}), n))}")
            last = (args.referrals + 49) // 50
            print(
                f"  queue page, last page ({last}){' ' * (23 - len(str(last)))}{_stats(_timed(lambda: client.get('/', params={'month': MONTH, 'page': last}), n))}"
            )
            items = iter(store.queue(MONTH, 1, n)[0])
            reason = next(iter(store.policy.reasons["approve"]))
            decisions = []
            for _ in range(n):
                item = next(items)
                token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', client.get(f"/applications/{item.id}").text).group(1)
                form = {"decision": "approve", "reason": reason, "note": "", "csrf_token": token}
                started = time.perf_counter()
                answer = client.post(f"/applications/{item.id}/decide", data=form)
                decisions.append(time.perf_counter() - started)
                assert answer.status_code == 302, answer.status_code
            print(f"  one decision (signed ledger entry)            {_stats(decisions)}")
            print(f"  ledger entries after the run: {store.ledger.head()[0]}")
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
