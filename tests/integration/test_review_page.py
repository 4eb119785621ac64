"""The review page as officers use it: the real server (gunicorn, started by the test on 127.0.0.1)
over a SQLite governance database, Debian's Chromium driven by Playwright for the officer's path,
httpx for the requests a browser would not make. Every refusal leaves the database and the ledger
as they were."""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from pipelines.review import add_officer
from riskcore.ledger import Ledger
from riskcore.review_policy import load_review_policy
from riskcore.review_store import ReviewStore, decisions, queue
from riskcore.signatures import load_allowed_signers, verify
from tests.browser import chromium
from tests.signing import key_of, write_allowed_signers

PASSWORDS = {"first.officer@example.com": "first officer's long password", "second.officer@example.com": "second officer's long password"}
FIRST, SECOND = PASSWORDS
POLICY = load_review_policy()
APPROVE = next(iter(POLICY.reasons["approve"]))
SCRIPT = "<script>alert(1)</script>"


def row(application_id: str, model_decision="refer", amount=10_000.0, queued_at="2025-01-02T09:00:00+00:00") -> dict:
    return {
        "application_id": application_id,
        "month": "2024-12",
        "model_decision": model_decision,
        "pd": 0.16,
        "points": 536,
        "reason_codes": json.dumps(["R03", "R07"]),
        "model_version": "4",
        "policy_version": "retail-loan-decision@1.0.0",
        "amount": amount,
        "segment": "online",
        "features": json.dumps({"loan_amount": amount, "channel": "online", "annual_income": 41000.0}),
        "queued_at": queued_at,
        "source": "referred" if model_decision == "refer" else "appeal",
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("review")
    for identity, password in PASSWORDS.items():
        add_officer(str(data / "keys" / "reviewers"), identity, password)
    (data / "governance").mkdir()
    store = ReviewStore(Ledger.from_url(f"sqlite:///{data}/governance/ledger.db"), "retail_pd", POLICY)
    store.enqueue([row(f"APP-202412-{i:06d}", queued_at=f"2025-01-02T09:{i:02d}:00+00:00") for i in range(1, 6)])
    store.enqueue([row("APP-202412-000900", "decline", amount=50_000.0, queued_at="2025-01-03T09:00:00+00:00")])
    store.enqueue([row("APP-202412-000800", "decline", amount=10_000.0, queued_at="2025-01-03T08:00:00+00:00")])  # appealed, under four eyes
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    write_allowed_signers(data / "keys" / "allowed_signers", ("review_service",))  # the local environment's allowed signers
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISK_")}
    env |= {"RISK_DATA_DIR": str(data), "RISK_ENV": "local", "RISK_REVIEW_SIGNING_KEY": key_of("review_service")[0]}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipelines.review", "--portfolio", "retail_pd", "serve", "--port", str(port), "--workers", "1"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            assert process.poll() is None, "the review server exited"
            try:
                if httpx.get(f"{url}/login").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url, store
    finally:
        process.terminate()
        process.wait(timeout=30)


def recorded(store: ReviewStore):
    """Everything a decision could change: the ledger, the decisions and the queue's statuses."""
    with store.ledger.engine.connect() as connection:
        rows = [tuple(r) for r in connection.execute(decisions.select().order_by(decisions.c.id))]
        statuses = [tuple(r) for r in connection.execute(queue.select().with_only_columns(queue.c.id, queue.c.status).order_by(queue.c.id))]
    return store.ledger.head(), rows, statuses


def item_id(store: ReviewStore, application_id: str) -> int:
    return next(i.id for i in store.queue("2024-12", per_page=1000, waiting_only=False)[0] if i.application_id == application_id)


def csrf(page: httpx.Response) -> str:
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)


def logged_in(url: str, identity: str) -> httpx.Client:
    client = httpx.Client(base_url=url)
    answer = client.post("/login", data={"identity": identity, "password": PASSWORDS[identity], "csrf_token": csrf(client.get("/login"))})
    assert answer.status_code == 302 and answer.headers["location"] == "/"
    return client


def decide(client: httpx.Client, item: int, **form) -> httpx.Response:
    return client.post(f"/applications/{item}/decide", data={"csrf_token": csrf(client.get(f"/applications/{item}")), **form})


def test_an_officer_overrides_an_appealed_decline_in_the_browser_and_the_ledger_records_it(server):
    url, store = server
    dialogs = []
    with chromium() as browser:
        page = browser.new_page()
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto(url)
        assert page.url == f"{url}/login"  # no session: the login page
        page.fill("#identity", FIRST)
        page.fill("#password", PASSWORDS[FIRST])
        page.click("button[type=submit]")
        page.get_by_text("Waiting for review: 2024-12").wait_for()
        rows = page.locator("tbody tr td:first-child").all_inner_texts()
        assert rows[0] == "APP-202412-000001" and rows[-2:] == ["APP-202412-000800", "APP-202412-000900"] and len(rows) == 7  # oldest first
        page.click("text=APP-202412-000800")
        assert page.locator("#model-decision").inner_text() == "decline"
        assert "annual_income" in page.content() and "full_name" not in page.content()
        page.check("input[value=approve]")
        page.select_option("#reason", APPROVE)
        page.fill("#note", SCRIPT)
        page.click("text=Record decision")
        page.locator("#decision").wait_for()
        assert page.locator("#status").inner_text() == "decided"
        assert page.locator("#note").inner_text() == SCRIPT  # shown as text...
        assert page.evaluate("document.querySelectorAll('script').length") == 0  # ...never as an element
        cookie = next(c for c in page.context.cookies() if c["name"] == "risk_review_session")
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert dialogs == []
    (entry,) = store.ledger.entries(subject="retail_pd/application/APP-202412-000800")
    assert entry.kind == "override" and entry.payload["side"] == "high"  # approving what the model declined
    assert entry.actor == FIRST and entry.payload["from_decision"] == "decline" and entry.payload["to_decision"] == "approve"
    assert entry.payload["reason"] == APPROVE and entry.payload["auth_method"] == "password" and "script" not in json.dumps(entry.payload)
    assert store.decisions_of("APP-202412-000800")[0].note == SCRIPT  # kept in the review table only
    # Signed by the review service's own key, over the whole payload:
    signers = load_allowed_signers(store.ledger.engine.url.database.replace("governance/ledger.db", "keys/allowed_signers"))
    verify(entry.payload["signed_request"].encode(), entry.payload["signature"], signers, "review_service")
    signed = json.loads(json.loads(entry.payload["signed_request"])["reason"])
    assert entry.payload["signed_by"] == "review_service" and signed == {k: entry.payload[k] for k in signed} and signed["officer"] == FIRST


def test_every_page_carries_the_security_headers(server):
    url, _ = server
    headers = httpx.get(f"{url}/login").headers
    assert headers["content-security-policy"].startswith("default-src 'none'") and "script-src" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_a_wrong_password_logs_no_one_in(server):
    url, store = server
    before = recorded(store)
    client = httpx.Client(base_url=url)
    answer = client.post("/login", data={"identity": FIRST, "password": "not the password at all", "csrf_token": csrf(client.get("/login"))})
    assert answer.status_code == 401 and "Wrong identity or password" in answer.text
    assert client.get("/").status_code == 302
    unknown = client.post("/login", data={"identity": "nobody@example.com", "password": "whatever it is, long", "csrf_token": csrf(client.get("/login"))})
    assert unknown.status_code == 401
    assert recorded(store) == before


def test_no_session_no_decision(server):
    url, store = server
    before = recorded(store)
    item = item_id(store, "APP-202412-000002")
    assert httpx.get(f"{url}/applications/{item}").headers["location"] == "/login"
    # A session from the login page (so a valid CSRF token) but no login:
    client = httpx.Client(base_url=url)
    answer = client.post(f"/applications/{item}/decide", data={"csrf_token": csrf(client.get("/login")), "decision": "approve", "reason": APPROVE})
    assert answer.status_code == 401
    assert recorded(store) == before


def test_a_forged_post_without_the_csrf_token_is_refused(server):
    url, store = server
    before = recorded(store)
    client = logged_in(url, FIRST)
    answer = client.post(f"/applications/{item_id(store, 'APP-202412-000003')}/decide", data={"decision": "approve", "reason": APPROVE})
    assert answer.status_code == 400 and "CSRF" in answer.text
    assert recorded(store) == before


def test_a_second_review_of_the_same_application_is_refused(server):
    url, store = server
    item = item_id(store, "APP-202412-000004")
    assert decide(logged_in(url, FIRST), item, decision="approve", reason=APPROVE).status_code == 302
    (entry,) = store.ledger.entries(subject="retail_pd/application/APP-202412-000004")
    assert entry.kind == "referral_decision" and entry.payload["side"] is None  # deciding a referral overrides nothing
    before = recorded(store)
    again = decide(logged_in(url, SECOND), item, decision="decline", reason=next(iter(POLICY.reasons["decline"])))
    assert again.status_code == 409 and "already reviewed" in again.text
    assert recorded(store) == before


def test_a_four_eyes_override_needs_a_second_different_officer(server):
    url, store = server
    item = item_id(store, "APP-202412-000900")  # declined by the model, appealed, 50,000 > the policy's 25,000
    first = logged_in(url, FIRST)
    assert decide(first, item, decision="approve", reason=APPROVE).status_code == 302
    assert store.item(item).status == "awaiting_second_officer" and not store.ledger.entries(subject="retail_pd/application/APP-202412-000900")
    before = recorded(store)
    same = first.post(f"/applications/{item}/confirm", data={"csrf_token": csrf(first.get(f"/applications/{item}"))})
    assert same.status_code == 409 and "four eyes" in same.text
    assert recorded(store) == before
    second = logged_in(url, SECOND)
    assert second.post(f"/applications/{item}/confirm", data={"csrf_token": csrf(second.get(f"/applications/{item}"))}).status_code == 302
    (entry,) = store.ledger.entries(subject="retail_pd/application/APP-202412-000900")
    assert entry.kind == "override" and entry.actor == FIRST and entry.payload["second_officer"] == SECOND and entry.payload["side"] == "high"
    assert store.ledger.verify().ok
