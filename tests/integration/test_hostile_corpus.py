"""The hostile landing-file corpus (issue 13) through real pipeline runs.

One small world (one portfolio, one month of a few hundred synthetic applications) is set up once;
each variant of its landing file is materialised by the portfolio's monthly ingestion job, in this
process, on its own data dir and its own Dagster instance (DAGSTER_HOME), with GX Data Docs on, so
that everything a variant's run stored can be scanned on its own. For each variant:

- its outcome: accepted, quarantined with reasons (the month blocked when the contract says so),
  or a failed contract check naming the file, the column and the rule;
- received = accepted + quarantined, read from the assets' materialisation metadata;
- no clear PII value of that file, in any spelling the file uses (as UTF-8, as the file's own
  encoding, JSON- and HTML-decoded), in any stored byte: the datasets (raw bytes, and their values
  decoded), Dagster's SQLite storage (raw bytes, and every text value, JSON decoded), compute
  logs, the ledger, GX Data Docs, MLflow and reports if present;
- no script or onerror payload unescaped in an HTML or Markdown file, nor in event-log metadata
  that the Dagster UI renders as Markdown. Each surface is its own test and names the file that
  renders it, so a failure says whose it is.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import json
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from checks import contract_path
from pipelines.definitions import build_definitions
from pipelines.jobs import job_name
from riskcore.contract import load_contract
from riskcore.synthetic import applications_frame, generate_month
from tests.hostile_corpus import Case, cases, clear_pii
from tests.integration.portfolio_files import deployment, write_portfolio

MONTH = "2023-03"
ROWS = 500  # 2% quarantine tolerance: up to 10 quarantined rows pass
PORTFOLIO = "hostile_pd"
KEY = "hostile-corpus-integration-key"
CONTRACT = load_contract(contract_path("loan_applications.yaml"))
CASES = [case for case in cases(applications_frame(generate_month(13, MONTH, ROWS)), CONTRACT) if case.pipeline]
RAW, APPLICATIONS, QUARANTINED, FEATURES = "raw_applications", "applications", "quarantined_applications", "application_features"
CONTRACT_CHECK, TOLERANCE_CHECK, RECONCILE_CHECK = (
    "check_applications_contract",
    "check_quarantine_within_tolerance",
    "check_received_equals_accepted_plus_quarantined",
)
# A payload is unescaped when its tag is: `&lt;img src=x onerror=...` is text, `<img src=x onerror=` is markup.
RAW_PAYLOADS = re.compile(r"<\s*script\b[^>]*>\s*alert\(1\)|<\s*img\b[^>]*\bonerror\s*=", re.IGNORECASE)
GX_STATIC = Path(importlib.util.find_spec("great_expectations").origin).parent / "render" / "view" / "static"


@dataclass
class Run:
    case: Case
    root: Path  # the run's data dir: landing, datasets, ledger, GX Data Docs, MLflow
    home: Path  # the run's DAGSTER_HOME
    success: bool
    seconds: float
    checks: dict[str, dg.AssetCheckEvaluation]
    metadata: dict[str, dict]  # materialisation metadata by asset name, values unwrapped

    @property
    def file(self) -> str:
        return f"{MONTH}.{self.case.suffix}"

    def stored_files(self) -> list[Path]:
        """Every file the run stored: under its data dir (not the landing file, which is the
        input and holds clear PII by design, nor the portfolio file the test wrote) and DAGSTER_HOME."""
        inputs = {self.root / "landing", self.root / "portfolios", self.home}
        files = [p for p in self.root.rglob("*") if p.is_file() and not any(p.is_relative_to(i) for i in inputs)]
        return sorted(files + [p for p in self.home.rglob("*") if p.is_file()])


@dataclass
class World:
    root: Path
    portfolio_file: str
    gx_static: frozenset[str]  # digests of GX's own static files (fonts, images, styles) a Data Docs site copies
    runs: dict[str, Run] = field(default_factory=dict)

    def run(self, case: Case) -> Run:
        """The variant's ingestion run (once per module)."""
        if case.name not in self.runs:
            self.runs[case.name] = self._run(case)
        return self.runs[case.name]

    def _run(self, case: Case) -> Run:
        start = time.perf_counter()
        root = self.root / re.sub(r"[^a-z0-9]+", "_", case.name.lower()).strip("_")
        landing = root / "landing" / PORTFOLIO / "applications"
        landing.mkdir(parents=True)
        (landing / f"{MONTH}.{case.suffix}").write_bytes(case.data)
        resources = deployment(root, [self.portfolio_file], key=KEY, docs=True, auto_approve=None)
        job = build_definitions(resources).resolve_job_def(job_name(PORTFOLIO, "monthly_ingestion_job"))
        home = root / "dagster_home"
        home.mkdir()
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            result = job.execute_in_process(instance=instance, partition_key=f"{MONTH}-01", raise_on_error=False)
            checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
            metadata = {
                e.asset_key.path[-1]: {k: getattr(v, "value", v) for k, v in e.materialization.metadata.items()}
                for e in result.get_asset_materialization_events()
            }
            success = result.success
        return Run(case, root, home, success, time.perf_counter() - start, checks, metadata)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    """One portfolio whose 2023-03 labels have not matured as of 2023-04 (no outcome file needed)."""
    root = tmp_path_factory.mktemp("hostile_corpus")
    portfolio = write_portfolio(root / "portfolios", PORTFOLIO, calendar={"evaluation_month": "2023-04"})
    static = frozenset(hashlib.sha256(p.read_bytes()).hexdigest() for p in GX_STATIC.rglob("*") if p.is_file())
    world = World(root, portfolio, static)
    yield world
    total = sum(r.seconds for r in world.runs.values())
    print(f"\nhostile corpus: {len(world.runs)} ingestion runs in {total:.1f} s")
    for run in world.runs.values():
        print(f"  {run.case.name:<48} {outcome(run):<60} {run.seconds:5.1f} s")


def outcome(run: Run) -> str:
    """One line for the corpus table: what became of the file."""
    meta = run.metadata.get(APPLICATIONS, {})
    counts = f"received {meta.get('rows_received')}, accepted {meta.get('rows')}, quarantined {run.metadata.get(QUARANTINED, {}).get('rows')}"
    failed = [f"{n}: {c.metadata.get('failed_rules', c.metadata.get('reasons')).value}" for n, c in run.checks.items() if not c.passed]
    if run.case.violation:
        return f"error {failed[0] if failed else '(no failed check)'} ({counts})"
    verdict = "quarantined" if run.metadata.get(QUARANTINED, {}).get("rows") else "accepted" if meta.get("rows") else "no rows"
    return f"{verdict} ({counts})" + (f", blocked: {failed}" if failed else "")


# --- outcome and counts ----------------------------------------------------------------------------


def test_the_corpus_is_large_enough():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_variant_ends_as_designed_and_every_row_is_accounted_for(world, case):
    run = world.run(case)
    applications, quarantined = run.metadata[APPLICATIONS], run.metadata[QUARANTINED]
    received, accepted, held = applications["rows_received"], applications["rows"], quarantined["rows"]
    assert received == accepted + held == case.received, (received, accepted, held)
    reconcile = run.checks[RECONCILE_CHECK]
    assert reconcile.passed and reconcile.metadata["unaccounted"].value == 0
    assert applications["source_file"] == quarantined["source_file"] == run.file
    assert run.metadata[RAW]["rows_received"] == (received if received or not case.violation else None)  # None: unreadable

    if case.violation:  # blocked: the failed check names file, column and rule
        column, rule = case.violation
        named = f"{column or 'file'}:{rule}"
        check = run.checks[CONTRACT_CHECK]
        assert not run.success and not check.passed
        assert check.metadata["failed_rules"].value == named
        assert check.metadata["source_file"].value == run.file
        error = check.metadata["observed"].value["error"]
        assert error.startswith(f"{run.file}: ") and f"'{rule}'" in error and (f"column '{column}'" in error if column else True), error
        assert accepted == 0 and quarantined["reasons"] == ({named: received} if received else {})
        assert FEATURES not in run.metadata
        return

    assert accepted == case.accepted and quarantined["reasons"] == case.reasons
    assert case.changes.items() <= applications["header_changes"].items()
    over_tolerance = received and held / received > CONTRACT.quality.quarantine_tolerance
    if case.blocks:
        assert not run.success and case.blocks in run.checks[CONTRACT_CHECK].metadata["failed_rules"].value
        assert FEATURES not in run.metadata
    elif over_tolerance:
        assert not run.success and not run.checks[TOLERANCE_CHECK].passed and run.checks[CONTRACT_CHECK].passed
        assert FEATURES not in run.metadata
    else:
        assert run.success, {n: c.metadata.get("failed_rules") for n, c in run.checks.items() if not c.passed}
        assert all(c.passed for c in run.checks.values())
        assert run.metadata[FEATURES]["rows"] == accepted


# --- no clear PII in any stored byte -----------------------------------------------------------------

PREFIX = 8  # needles are found by their first 8 bytes (vectorised), then compared whole


def _find(needles: set[bytes], blob: bytes) -> set[bytes]:
    """Which needles occur in the blob: every 8-byte window of it at once (numpy), not a pass per needle."""
    found = {n for n in needles if len(n) < PREFIX and n in blob}
    by_prefix: dict[int, list[bytes]] = {}
    for needle in needles:
        if len(needle) >= PREFIX:
            by_prefix.setdefault(int.from_bytes(needle[:PREFIX], "little"), []).append(needle)
    if len(blob) < PREFIX or not by_prefix:
        return found
    data = np.frombuffer(blob, dtype=np.uint8)
    windows = np.zeros(len(data) - PREFIX + 1, dtype=np.uint64)
    for i in range(PREFIX):
        windows |= data[i : len(data) - PREFIX + 1 + i].astype(np.uint64) << np.uint64(8 * i)
    for position in np.flatnonzero(np.isin(windows, np.fromiter(by_prefix, dtype=np.uint64))):
        found |= {n for n in by_prefix[int(windows[position])] if blob.startswith(n, int(position))}
    return found


def _strings(value) -> list[str]:
    """Every string inside a value that may be JSON (Dagster's serialised events are)."""
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, str):
        if value[:1] in '[{"':
            try:
                return [value, *_strings(json.loads(value))]
            except ValueError:
                pass
        return [value]
    return []


def _sqlite_values(path: Path):
    """Every value of every table of a SQLite file, read-only."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in connection.execute("select name from sqlite_master where type = 'table'")]
        for table in tables:
            for row in connection.execute(f'select * from "{table}"'):
                yield from row
    finally:
        connection.close()


def _decoded(path: Path, raw: bytes) -> list[str]:
    """What a stored file says once decoded: Parquet values and schema, SQLite text (JSON decoded), HTML unescaped."""
    if raw.startswith(b"PAR1"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        texts = [table.schema.to_string(show_schema_metadata=True)]
        for column in table.columns:
            texts += [str(v) for v in column.to_pylist() if v is not None]
        return texts
    if raw.startswith(b"SQLite format 3\x00"):
        texts = []
        for value in _sqlite_values(path):
            texts += _strings(value) if isinstance(value, str) else [value.decode("utf-8", "replace")] if isinstance(value, bytes) else []
        return texts
    text = raw.decode("utf-8", "replace")
    return [text, html.unescape(text), *(_strings(text) if path.suffix == ".json" else [])]


def _needles(case: Case) -> dict[bytes, str]:
    """The file's clear PII values as bytes, in UTF-8 and in the file's own encoding."""
    needles = {}
    for value in clear_pii(case, CONTRACT):
        for encoding in dict.fromkeys(("utf-8", case.encoding)):
            try:
                needles[value.encode(encoding)] = value
            except UnicodeEncodeError:
                pass
    return needles


def _owner(run: Run, path: Path) -> str:
    """Who writes what is under this path (for the failure message)."""
    relative = path.relative_to(run.root)
    owners = {"gx_data_docs": "GX Data Docs: checks/validation.py", "datasets": "datasets: riskcore/ingestion.py", "dagster_home": "Dagster event log: assets/"}
    return f"{relative} ({owners.get(relative.parts[0], 'ledger/MLflow')})"


def _scannable(path: Path) -> bytes:
    """A stored file's raw bytes and what they decode to, as one blob."""
    raw = path.read_bytes()
    try:
        decoded = _decoded(path, raw)
    except Exception:  # a file that does not decode (the truncated Parquet landing file) is scanned raw
        decoded = []
    return b"\x1f".join([raw, *(t.encode("utf-8", "surrogatepass") for t in decoded)])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_clear_pii_of_the_file_in_any_stored_byte(world, case):
    run = world.run(case)
    needles = _needles(case)
    landing = run.root / "landing" / PORTFOLIO / "applications" / run.file
    if case.frame is not None and case.suffix == "csv":  # the scan finds the file's PII where it is: in the file itself
        assert {needles[n] for n in _find(set(needles), _scannable(landing))} == set(needles.values())
    leaks: dict[str, list[str]] = {}
    scanned = 0
    for path in run.stored_files():
        if hashlib.sha256(path.read_bytes()).hexdigest() in world.gx_static:
            continue  # byte for byte one of GX's own static files: nothing of the file is in it
        blob = _scannable(path)
        scanned += len(blob)
        found = _find(set(needles), blob)
        if found:
            leaks[_owner(run, path)] = sorted(needles[n] for n in found)
    assert scanned and any(p.suffix == ".parquet" for p in run.stored_files())
    assert any("dagster_home" in p.parts for p in run.stored_files())
    assert not leaks, "clear PII stored: " + "; ".join(f"{where}: {len(values)} values, e.g. {values[0]!r}" for where, values in leaks.items())


# --- no unescaped payload where a browser renders it ------------------------------------------------


def _payload_files(run: Run, inside: str | None) -> dict[str, int]:
    """HTML and Markdown files under the run's data dir (inside one top folder, or outside GX's) with a raw payload tag."""
    found = {}
    for path in run.stored_files():
        relative = path.relative_to(run.root)
        if path.suffix.lower() not in (".html", ".htm", ".md") or (relative.parts[0] == "gx_data_docs") != (inside == "gx_data_docs"):
            continue
        hits = RAW_PAYLOADS.findall(path.read_text("utf-8", "replace"))
        if hits:
            found[str(relative)] = len(hits)
    return found


def _markdown_in_event_log(run: Run) -> list[str]:
    """What the Dagster UI renders as Markdown from the run's events: Markdown metadata values and event descriptions."""
    rendered = []

    def walk(value):
        if isinstance(value, dict):
            if value.get("__class__") == "MarkdownMetadataEntryData":
                rendered.append(value.get("md_str") or "")
            if isinstance(value.get("description"), str):
                rendered.append(value["description"])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    for path in run.home.rglob("*.db"):
        for value in _sqlite_values(path):
            if isinstance(value, str) and value[:1] == "{":
                try:
                    walk(json.loads(value))
                except ValueError:
                    pass
    return rendered


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_unescaped_payload_in_gx_data_docs(world, case):
    """GX Data Docs pages are written by checks/validation.py (GX renders what the validation saw)."""
    run = world.run(case)
    found = _payload_files(run, "gx_data_docs")
    assert not found, f"[checks/validation.py] unescaped payload in GX Data Docs: {found}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_unescaped_payload_in_reports(world, case):
    """Any other HTML or Markdown the run stored (reports, model cards: riskcore/report.py, riskcore/model_card.py)."""
    run = world.run(case)
    found = _payload_files(run, None)
    assert not found, f"[riskcore/report.py] unescaped payload in a report: {found}"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_no_unescaped_payload_in_event_log_markdown(world, case):
    """Markdown metadata and descriptions of the run's events (assets/ingestion.py writes them)."""
    run = world.run(case)
    rendered = _markdown_in_event_log(run)
    found = [text[:80] for text in rendered if RAW_PAYLOADS.search(text)]
    assert not found, f"[assets/ingestion.py] unescaped payload in Markdown the Dagster UI renders: {found}"
