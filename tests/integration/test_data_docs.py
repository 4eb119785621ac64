"""One shared GX Data Docs site (checks/data_docs.py): a page per validation, one index, one copy of GX's static assets.

Real GX, real files: two small contracts validated into one folder, one batch validated twice,
two processes validating into the same folder at once, one held at the site lock while another
writes, and the index read in headless Chromium with no network (GX's table scripts come from CDNs).
"""

import multiprocessing
import re
import time
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import pandas as pd
import yaml

from checks.data_docs import LOCK, PLAIN_INDEX, RESULTS, site_lock
from checks.validation import ContractValidator
from riskcore.contract import load_contract
from tests.browser import chromium
from tests.hostile_corpus import IMG


def _contract(folder: Path, name: str):
    doc = {
        "id": name,
        "version": "1.0.0",
        "owner": "risk@example.com",
        "quality": {"rowCountMin": 1, "rowCountMax": 1000, "quarantineTolerance": 0.0},
        "schema": [
            {"name": "application_id", "logicalType": "string", "role": "id", "unique": True, "required": True},
            {"name": "purpose", "logicalType": "string", "role": "attribute", "allowedValues": ["car", "home"]},
        ],
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return load_contract(path)


def _frame(month: str) -> pd.DataFrame:
    return pd.DataFrame({"application_id": [f"{month}-{i}" for i in range(50)], "purpose": ["car", "home"] * 25})


def _size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _listed(docs: Path) -> set[str]:
    """The pages the index links to (GX url-quotes their paths relative to the site)."""
    index = (docs / "index.html").read_text()
    return {p for p in (quote(f.relative_to(docs).as_posix()) for f in (docs / "validations").rglob("*.html")) if p in index}


def test_each_validation_adds_its_own_page_to_one_site_and_keeps_the_old_ones(tmp_path):
    docs = tmp_path / "gx_data_docs"
    validator = ContractValidator(data_docs_dir=str(docs))
    loans, cards = _contract(tmp_path, "loans"), _contract(tmp_path, "cards")
    runs = [(loans, "2024-01"), (loans, "2024-02"), (cards, "2024-01"), (cards, "2024-02"), (loans, "2024-01")]
    pages, sizes = [], []
    for contract, month in runs:
        report = validator.validate(_frame(month), contract, batch=f"retail-{contract.id}-{month}")
        assert report.success
        pages.append(Path(report.docs))
        sizes.append(_size(docs))

    # One site: one index and one copy of GX's static assets, whatever the contracts and batches.
    assert [p.relative_to(docs) for p in docs.rglob("index.html")] == [Path("index.html")]
    assert [p.relative_to(docs) for p in docs.rglob("static") if p.is_dir()] == [Path("static")]
    static = _size(docs / "static")
    # A page per validation, its own: the batch it validated, the re-validation beside the first.
    assert len(set(pages)) == len(runs) and all(p.is_file() and p.is_relative_to(docs / "validations") for p in pages)
    for page, (contract, month) in zip(pages, runs):
        assert f"retail-{contract.id}-{month}" in page.parts and f"retail-{contract.id}-{month}" in page.read_text()
    assert pages[0].parent.parent == pages[4].parent.parent  # same suite and batch, two run times
    # The index lists every validation ever made, the first run of the re-validated batch included.
    assert _listed(docs) == {quote(p.relative_to(docs).as_posix()) for p in pages}
    # The site grows by a page (and its stored result) per validation, not by a site.
    growth = [b - a for a, b in zip(sizes, sizes[1:])]
    assert sizes[0] > static and all(0 < g < static / 10 for g in growth), (static, sizes)


def _validate_months(docs: str, folder: str, name: str, months: list[str], barrier) -> list[str]:
    contract = _contract(Path(folder), name)
    validator = ContractValidator(data_docs_dir=docs)
    barrier.wait()
    return [validator.validate(_frame(m), contract, batch=f"retail-{name}-{m}").docs for m in months]


def test_two_processes_validating_at_once_leave_an_index_of_both(tmp_path):
    docs = tmp_path / "gx_data_docs"
    months = ["2024-01", "2024-02", "2024-03"]
    spawn = multiprocessing.get_context("spawn")
    with spawn.Manager() as manager, spawn.Pool(2) as pool:
        barrier = manager.Barrier(2)  # both start validating together
        jobs = [pool.apply_async(_validate_months, (str(docs), str(tmp_path), name, months, barrier)) for name in ("loans", "cards")]
        pages = [Path(p) for job in jobs for p in job.get(timeout=600)]

    assert len(set(pages)) == 6 and all(p.is_file() for p in pages)
    assert _listed(docs) == {quote(p.relative_to(docs).as_posix()) for p in pages}
    assert len(list((docs / ".results").rglob("*.json"))) == 6
    assert not [p for p in docs.rglob("*") if ".tmp-" in p.name]  # every write was renamed into place


def _waiting_on(lock: Path) -> set[int]:
    """Processes blocked on `lock` now: the kernel lists each waiting flock in /proc/locks as '-> FLOCK'."""
    inode = f":{lock.stat().st_ino} "
    return {int(line.split()[5]) for line in Path("/proc/locks").read_text().splitlines() if "->" in line and "FLOCK" in line and inode in line}


def _validate_into(docs: str, folder: str, pages) -> None:
    contract = _contract(Path(folder), "loans")
    pages.put(ContractValidator(data_docs_dir=docs).validate(_frame("2024-01"), contract, batch="retail-loans-2024-01").docs)


def test_a_validation_waits_for_the_site_lock_before_it_writes_anything(tmp_path):
    docs = tmp_path / "gx_data_docs"
    spawn = multiprocessing.get_context("spawn")
    pages = spawn.Queue()
    with site_lock(str(docs)):  # another writer holds the site
        child = spawn.Process(target=_validate_into, args=(str(docs), str(tmp_path), pages))
        child.start()
        deadline = time.monotonic() + 300
        while child.pid not in _waiting_on(docs / LOCK):
            assert child.is_alive() and pages.empty(), "the validation finished without waiting: the site is written unlocked"
            assert time.monotonic() < deadline, "the validation never reached the site lock"
            time.sleep(0.2)
        assert not (docs / RESULTS).exists() and not (docs / "index.html").exists()  # blocked before its first write
    page = Path(pages.get(timeout=300))  # the lock released, it goes on
    child.join(60)
    assert child.exitcode == 0 and page.is_file() and _listed(docs) == {quote(page.relative_to(docs).as_posix())}


def test_the_index_lists_every_validation_in_a_browser_that_cannot_reach_the_cdns(tmp_path):
    docs = tmp_path / "gx_data_docs"
    validator = ContractValidator(data_docs_dir=str(docs))
    loans, cards = _contract(tmp_path, "loans"), _contract(tmp_path, "cards")
    runs = [(loans, "retail-loans-2024-01"), (cards, "retail-cards-2024-01"), (loans, IMG)]  # a batch name carrying markup
    pages = {batch: Path(validator.validate(_frame("2024-01"), contract, batch=batch).docs) for contract, batch in runs}
    assert IMG not in (docs / "index.html").read_text()  # nowhere raw: not in the plain table, nor in the data bootstrap-table would write as HTML

    dialogs = []
    with chromium() as browser:
        page = browser.new_page()
        page.route(re.compile(r"^https?://"), lambda route: route.abort())  # no network: the CDNs are out of reach
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.goto((docs / "index.html").as_uri())
        table = page.locator(f"#{PLAIN_INDEX}")
        assert table.is_visible()
        rows = table.locator("tbody tr")
        shown = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
        # A row per validation, newest first: status, run time, run name (the batch, as text), suite.
        assert [(status, name, suite) for status, _, name, suite in shown] == [
            ("Success", IMG, "loans__v1_0_0"),
            ("Success", "retail-cards-2024-01", "cards__v1_0_0"),
            ("Success", "retail-loans-2024-01", "loans__v1_0_0"),
        ], shown
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+", run_time) for _, run_time, _, _ in shown), shown
        assert table.locator("img").count() == 0  # the markup is text, never an element
        assert table.locator("a").count() == len(runs)
        for i in range(len(runs)):  # each link opens its own validation's page, which names the batch as text
            page.goto((docs / "index.html").as_uri())
            link = table.locator("a").nth(i)
            name = link.inner_text()
            link.click()
            page.wait_for_load_state()
            assert Path(unquote(urlsplit(page.url).path)) == pages[name]
            assert name in page.locator("body").inner_text() and page.locator("img[src=x]").count() == 0
    assert dialogs == []
