"""Every HTML and Markdown output shows what came from data or from a person as text, never as live markup (issue 13).

Each output is rendered for real, with the payloads below wherever a value of a landing file, a
column name or a person-typed argument reaches it: GX Data Docs (through ContractValidator), the
regulatory report, the model card (turned into HTML by a real Markdown renderer, raw HTML
allowed, as a permissive viewer would), the Evidently drift page and the alert. The HTML is
parsed: no script element, event handler or `javascript:` URL of a payload's, and every payload
is still there as text (a value dropped instead of escaped fails too).
"""

import json
import re
from html import unescape
from html.parser import HTMLParser

import mistune
import numpy as np
import pandas as pd
import pytest
import yaml

from assets.monitoring import _evidently_html
from checks.validation import ContractValidator
from riskcore.alerts import failure_alert
from riskcore.contract import load_contract
from riskcore.drift import build_profile
from riskcore.escaping import html_text, markdown_text
from riskcore.features import FeatureSpec
from riskcore.gates import Gate
from riskcore.ledger import Entry
from riskcore.model_card import render_model_card
from riskcore.monitoring_policy import load_monitoring_policy
from riskcore.report import OverrideInputs, ReportInputs, build_report, render_html
from riskcore.review import override_metrics, records
from riskcore.review_policy import load_review_policy

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "javascript:alert(1)",
    "[x](javascript:alert(1))",
    "![x](http://evil.example/pixel.png)",
    "<a href='javascript:alert(1)'>x</a>",
    "a | b",
    "x\n# injected heading",
    "</script><script>alert(1)</script>",
    "<!-- hidden",
    "`<img src=x onerror=alert(1)>",
]


def _normal(text: str) -> str:
    return " ".join(text.split())


class _Page(HTMLParser):
    """What a browser would make live: script elements, event handlers, URLs; and the visible text."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.live, self.text, self.scripts, self.tags, self._inside = [], [], [], [], None
        self.feed(page)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        for name, value in attrs:
            value = re.sub(r"[\x00-\x20]", "", value or "").lower()
            if name.startswith("on") and "alert(" in value:
                self.live.append(f"<{tag} {name}={value}>")
            if value.startswith("javascript:"):
                self.live.append(f"<{tag} {name}={value}>")
        if tag in ("script", "style"):
            self._inside = tag
            if tag == "script":
                self.scripts.append("")

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        self._inside = None

    def handle_endtag(self, tag):
        if tag == self._inside:
            if tag == "script" and self.scripts[-1].strip().startswith("alert("):
                self.live.append(f"<script>{self.scripts[-1]}</script>")
            self._inside = None

    def handle_data(self, data):
        if self._inside == "script":
            self.scripts[-1] += data
        elif self._inside is None:
            self.text.append(data)

    def visible(self) -> str:
        return _normal(" ".join(self.text))


def _assert_inert(page: str, payloads=PAYLOADS) -> _Page:
    parsed = _Page(page)
    assert parsed.live == [], parsed.live
    missing = [p for p in payloads if _normal(p) not in parsed.visible()]
    assert missing == [], f"payloads not shown as text: {missing}"
    return parsed


def test_payload_is_inert_and_visible_in_gx_data_docs(tmp_path):
    doc = {
        "id": "loans",
        "version": "1.0.0",
        "owner": "risk@example.com",
        "quality": {"rowCountMin": 1, "rowCountMax": 1000, "quarantineTolerance": 0.0},
        "schema": [
            {"name": "application_id", "logicalType": "string", "role": "id", "unique": True, "required": True},
            {"name": "email", "logicalType": "string", "role": "pii", "unique": True},
            {"name": "purpose", "logicalType": "string", "role": "attribute", "allowedValues": ["car", "home"]},
        ],
    }
    path = tmp_path / "loans.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    contract = load_contract(path)
    rows = PAYLOADS * 2  # each id twice: the unique rule fails and lists them
    frame = pd.DataFrame(
        {
            "application_id": rows,
            "email": ["jane.doe@example.com"] * len(rows),  # a PII column's values never reach the docs
            "purpose": rows,  # not in the allowed set
            **{name: ["x"] * len(rows) for name in PAYLOADS[:3]},  # columns the contract does not know: the schema rule lists them
        }
    )
    report = ContractValidator(data_docs_dir=str(tmp_path / "docs")).validate(frame, contract, "2024-01")

    assert not report.success and {"application_id:unique", "purpose:allowed values", "table:schema", "email:unique"} <= set(report.failed)
    assert report.docs and report.docs.endswith(".html")
    assert set(report.samples["purpose:allowed values"]) <= set(PAYLOADS)  # the check's metadata keeps the values (Dagster's UI escapes)
    pages = sorted((tmp_path / "docs").rglob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        _assert_inert(page.read_text(), payloads=[])
        assert "jane.doe@example.com" not in page.read_text()
    validation = _assert_inert(open(report.docs).read())
    assert "[withheld: pii column]" in validation.visible()


def _report_inputs() -> ReportInputs:
    n, groups = 44, len(PAYLOADS)
    approved = ["approve" if i % 3 else "decline" for i in range(n)]
    applications = pd.DataFrame(
        {
            "application_id": [f"A{i}" for i in range(n)],
            "contract_version": PAYLOADS[0],
            "source_file_sha256": PAYLOADS[1],
            "purpose": [PAYLOADS[i % groups] for i in range(n)],  # a categorical value of the file, the fairness groups
        }
    )
    scores = pd.DataFrame(
        {
            "application_id": applications["application_id"],
            "decision": approved,
            "score_points": np.linspace(450, 650, n),
            "pd": np.linspace(0.01, 0.3, n),
            "model_name": "retail_pd",
            "model_version": "1",
            "feature_set_version": PAYLOADS[2],
            "policy_version": PAYLOADS[3],
            "code_version": PAYLOADS[4],
            "dagster_run_id": PAYLOADS[5],
            "cell": "champion",
            "rollout_step": 0,
            "canary_share": 0.0,
        }
    )
    drift = pd.DataFrame({"column": ["pd", PAYLOADS[6]], "psi": [0.01, 0.3], "psi_band": ["stable", PAYLOADS[7]], "drifted": [False, True]})
    # feature names and bin labels (categories of the file) in the stability pack's tables
    characteristics = pd.DataFrame({"feature": PAYLOADS[4], "bin": PAYLOADS[5:7], "reference_share": 0.5, "current_share": 0.5, "current_rows": 1})
    characteristics = characteristics.assign(reference_points=1.0, current_points=1.0, csi=0.0, shift_points=0.0)
    score_bands = pd.DataFrame({"band": ["[0, 450)"], "reference_share": [1.0], "current_share": [1.0], "current_rows": [n], "psi": [0.0]})
    model = {
        "label": PAYLOADS[8],
        "run_id": PAYLOADS[9],
        "gates_policy": PAYLOADS[10],
        "gates_passed": True,
        "gates": {PAYLOADS[0]: {"value": 0.7, "threshold": ">= 0.6", "passed": True, "note": PAYLOADS[1]}},
        "trail": [{"kind": "approval", "actor": PAYLOADS[2], "reason": PAYLOADS[3]}],
    }
    return ReportInputs(
        month="2024-01",
        input_files=[{"name": PAYLOADS[4], "sha256": PAYLOADS[5], "rows": n}],
        applications=applications,
        quarantine_reasons={f"{PAYLOADS[6]}:allowed values": 0},
        quarantined=0,
        scores=scores,
        models=[model],
        sensitive=["purpose"],
        min_group_size=1,
        min_adverse_impact_ratio=0.8,
        decision_policy=PAYLOADS[7],
        monitoring=load_monitoring_policy(),
        drift=drift,
        drift_reference=PAYLOADS[8],
        backtest_cohort=PAYLOADS[9],
        backtest_note=PAYLOADS[10],
        stability_pack={"notes": {"reference": PAYLOADS[3]}, "characteristics": characteristics, "score_bands": score_bands},
        overrides=_override_inputs(scores, applications),
    )


def _override_inputs(scores: pd.DataFrame, applications: pd.DataFrame) -> OverrideInputs:
    """Officers' names, reasons, notes and segments as typed or configured: every one a payload."""
    n = len(PAYLOADS)
    final = scores[["application_id"]].head(n).assign(model_decision=[("refer", "decline", "approve")[i % 3] for i in range(n)])  # referrals decided too
    final = final.assign(
        final_decision=["decline" if d == "approve" else "approve" for d in final["model_decision"]],
        side=[{"refer": None, "decline": "high", "approve": "low"}[d] for d in final["model_decision"]],
        reason=PAYLOADS,
        officer=PAYLOADS[::-1],
        second_officer=PAYLOADS,
        note=PAYLOADS,
        segment=PAYLOADS,
        ledger_seq=range(1, n + 1),
    )
    metrics = override_metrics(records(final), load_review_policy())
    cohort = final.assign(pd=0.1, defaulted=1)[["side", "pd", "defaulted"]]
    return OverrideInputs(month=PAYLOADS[3], final=final, metrics=metrics, groups=applications, note=PAYLOADS[1], cohort=PAYLOADS[2], cohort_final=cohort)


def test_payload_is_inert_and_visible_in_the_regulatory_report():
    page = render_html(build_report(_report_inputs()))
    parsed = _assert_inert(page)
    assert [t for t, _ in parsed.tags if t in ("a", "img", "iframe", "image", "use", "foreignobject")] == []  # the page has no links or images of its own
    # its charts (AUC over the months, empty here; PSI per column; score bands against the reference; no back-test here): PSI's holds the payload column name as text
    assert [t for t, _ in parsed.tags if t == "svg"] == ["svg", "svg", "svg"]
    second = page.index("<svg", page.index("<svg") + 1)
    chart = page[second : page.index("</svg>", second)]
    assert PAYLOADS[6] in unescape(chart) and html_text(PAYLOADS[6]) in chart


CARD_SECTIONS = [
    "Purpose and limits",
    "Data and lineage",
    "Features",
    "Discrimination",
    'Calibration (out of time, by PD grade: Jeffreys test and traffic light; grade "all" is the portfolio)',
    "Stability and fairness",
    "Promotion gates",
    "Approvals and history (governance ledger)",
    "Staged rollout (governance ledger)",
    "Known limitations",
]


def test_payload_is_inert_and_visible_in_the_model_card():
    card = render_model_card(
        model=PAYLOADS[0],
        run_id=PAYLOADS[11],  # identifiers are shown as code spans: a backtick must not end one
        lineage={"code_version": PAYLOADS[7], "feature_set_version": PAYLOADS[11], "training_set_sha256": "ab12cd"},
        windows={"train": PAYLOADS[3], "out_of_time": PAYLOADS[4]},
        specs=[FeatureSpec("purpose", "categorical", "R01", PAYLOADS[5])],
        metrics={"oot_auc": 0.75, "oot_rows": 100},
        calibration=pd.DataFrame({"grade": [PAYLOADS[6], "all"], "rows": [10, 20], "observed": [0.1, 0.2]}),
        gates=[Gate(PAYLOADS[7], 0.5, ">= 0.8", False, PAYLOADS[8]), Gate("auc", 0.75, ">= 0.6", True)],
        policy=PAYLOADS[1],
        compared_with=PAYLOADS[10],
        approval_rates={"purpose": {p: 0.5 for p in PAYLOADS}},  # group values come from the data
        ledger=[("approval", p, "2024-01-01T00:00:00Z") for p in PAYLOADS] + [(PAYLOADS[8], "ops", "now")],  # approver names and kinds as typed
        rollout=[  # the rollout's signers and reasons as typed
            Entry(
                i,
                "2024-01-01T00:00:00Z",
                kind,
                PAYLOADS[0],
                p,
                {"step": 1, "share": 0.05, "from_step": 1, "reason": p, "version": "2", "champion": "1", "key_id": "abcd0123", "policy": "p@1"},
                "",
                "",
            )
            for i, (kind, p) in enumerate(zip(["rollout_canary", "rollout_rollback"] * 6, PAYLOADS))
        ],
    )
    page = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "url"])(card)
    parsed = _assert_inert(page)
    tags = [t for t, _ in parsed.tags]
    assert [t for t in tags if t in ("a", "img", "script", "svg", "iframe")] == []  # the card has no links or images of its own: none came from a value
    headings = re.findall(r"<h([1-6])>(.*?)</h\1>", page, flags=re.S)
    assert [level for level, _ in headings] == ["1"] + ["2"] * len(CARD_SECTIONS)  # no value started a heading
    assert [unescape(text) for _, text in headings[1:]] == CARD_SECTIONS
    assert _normal(unescape(re.sub("<[^>]+>", "", headings[0][1]))) == f"Model card: {PAYLOADS[0]}"
    for table in re.findall(r"<table>.*?</table>", page, flags=re.S):  # no value split a row into more cells
        widths = {len(re.findall(r"<t[hd][ >]", row)) for row in re.findall(r"<tr>.*?</tr>", table, flags=re.S)}
        assert len(widths) == 1, table


@pytest.mark.parametrize("payload", PAYLOADS)
def test_markdown_text_keeps_every_payload_one_inline_text(payload):
    rendered = mistune.create_markdown(escape=False, plugins=["table", "strikethrough", "url"])(f"- {markdown_text(payload)}")
    parsed = _assert_inert(rendered, payloads=[payload])
    assert [t for t, _ in parsed.tags] == ["ul", "li"], rendered  # one list item of text: no link, image, heading or HTML


def test_payload_category_is_inert_and_kept_in_the_evidently_page():
    rng = np.random.default_rng(7)
    n = 120
    reference = pd.DataFrame({"income": rng.normal(50, 10, n), "purpose": rng.choice(["car", "home"], n), PAYLOADS[1]: rng.choice(["a", "b"], n)})
    current = pd.DataFrame(
        {"income": rng.normal(55, 10, n), "purpose": [PAYLOADS[i % len(PAYLOADS)] for i in range(n)], PAYLOADS[1]: rng.choice(["a", "b"], n)}
    )
    profile = build_profile(reference, ["income"], ["purpose", PAYLOADS[1]])  # a column name with a payload, too
    page = _evidently_html(profile, current, sample_rows=n, seed=1)

    parsed = _assert_inert(page, payloads=[])
    # The data the page's script draws from is one intact JSON document holding every value as it was.
    data = next(s for s in parsed.scripts if re.match(r"\s*var \w+ = ", s))
    document, _ = json.JSONDecoder().raw_decode(data, re.match(r"\s*var \w+ = ", data).end())
    strings = set()

    def walk(value):
        if isinstance(value, str):
            strings.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(document)
    assert set(PAYLOADS) <= strings
    assert PAYLOADS[1] in strings  # the column name too


def test_payload_is_inert_and_visible_in_an_alert():
    error = " ".join(PAYLOADS) + " <!channel> <http://evil.example|click here> <@U123>"
    url = "http://127.0.0.1:3000/runs/0123456789abcdef"
    for run_url, links in (
        (url, [f"{url}|run 01234567"]),
        ("javascript:alert(1)", []),
        ("http://x.example/a|<!channel>", ["http://x.example/a%7C%3C!channel%3E|run 01234567"]),
    ):
        payload = failure_alert(PAYLOADS[0], "0123456789abcdef", error, run_url, {})
        text = payload["text"]
        assert payload["blocks"][0]["text"]["text"] == text
        assert re.findall(r"<([^<>]*)>", text) == links  # Slack's only control sequence is the run's own link
        shown = unescape(text)  # as Slack shows it: &amp; &lt; &gt; decoded
        assert all(_normal(p) in _normal(shown) for p in PAYLOADS) and "<!channel>" in shown
        parsed = _Page(text)  # a client that renders the text as HTML gets text only
        assert parsed.live == [] and [t for t, _ in parsed.tags if not t.startswith("http")] == []
