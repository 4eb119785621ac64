"""One shared GX Data Docs site for every contract validation: a page per validation, one index, one copy of GX's static assets.

GX rebuilds a site's index from its context's validation results store, and removes the pages
whose result that store lacks: so the results (escaped copies, `checks.validation.docs_result`)
and the suites live in GX filesystem stores inside the site, and every validation adds its
result, renders its own page and the suite's (`build_data_docs(resource_identifiers=...)`), and
rebuilds the index, under one file lock: runs of different months in parallel processes each see
the others' results, and the index they leave lists them all. Files are written atomically (a
reader sees the old file or the new one) and left alone when unchanged (the static assets, 4 MB,
are copied by GX at every build). Imported only when Data Docs are built: it imports GX.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from urllib.parse import unquote

from great_expectations.data_context.store import TupleFilesystemStoreBackend
from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder
from great_expectations.render.util import resource_key_passes_run_name_filter
from great_expectations.render.view import DefaultJinjaIndexPageView, DefaultJinjaPageView
from jinja2 import FileSystemBytecodeCache
from upath import UPath

from resources.storage import atomic_write_bytes
from riskcore.escaping import html_text

SITE = "contracts"
RESULTS = ".results"  # GX's validation results store: what the index lists and the pages render
SUITES = ".suites"  # GX's expectations store: the suite pages the index links to
LOCK = ".lock"
PLAIN_INDEX = "validations-without-scripts"  # the index's table of validations that needs no script


class AtomicFilesystemStoreBackend(TupleFilesystemStoreBackend):
    """GX's filesystem store backend, each file written by rename and only when its bytes change."""

    def _set(self, key, value, **kwargs):
        key = key if isinstance(key, tuple) else key.to_tuple()
        path = os.path.join(self.full_base_directory, self._convert_key_to_filepath(key))
        data = value.encode("utf-8") if isinstance(value, str) else value
        try:
            with open(path, "rb") as existing:
                unchanged = existing.read() == data
        except FileNotFoundError:
            unchanged = False
        if not unchanged:
            atomic_write_bytes(UPath(path), data)
        return path


class _CompiledOnce:
    """GX gives every view its own Jinja environment, so each build parsed and compiled GX's ~50
    templates again (about a second per validation, in every process): Jinja's bytecode cache (a
    private folder in the user's temp dir, keyed by template source, written by rename) keeps
    them compiled across builds and processes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.env.bytecode_cache = _BYTECODE


class PageView(_CompiledOnce, DefaultJinjaPageView):
    pass


class IndexPageView(_CompiledOnce, DefaultJinjaIndexPageView):
    """GX's index, whose table of validations is drawn by jQuery and bootstrap-table from public
    CDNs: where they cannot load (behind a proxy, offline) it stayed empty. The validations tab
    also lists them in a plain HTML table, which an inline script hides once bootstrap-table has
    loaded. Run names come from configuration and landing files: escaped in both tables
    (bootstrap-table writes cell values as HTML)."""

    def render(self, document, template=None, **kwargs):
        for section in document.sections:
            for tab in (tab for block in section.content_blocks for tab in getattr(block, "tabs", ())):
                if tab["tab_name"] == "Validation Results":
                    rows = tab["tab_content"].table_data
                    plain = _plain_table(rows)
                    for row in rows:
                        row["run_name"] = html_text(row["run_name"])
                    tab["tab_content"] = [tab["tab_content"], plain]
        return super().render(document, template, **kwargs)


def _plain_table(rows: list[dict]) -> str:
    """The validations of GX's index table `rows` (newest first) as HTML: status, run time, run name linked to its page, suite."""
    body = "".join(
        f"<tr><td>{html_text(row['_validation_success_text'])}</td><td>{html_text(row['run_time'])}</td>"
        f'<td><a href="{html_text(row["_table_row_link_path"])}">{html_text(row["run_name"])}</a></td>'
        f"<td>{html_text(row['_expectation_suite_name_sort'])}</td></tr>"
        for row in rows
    )
    return (
        f'<table id="{PLAIN_INDEX}" class="table table-sm"><thead><tr><th>Status</th><th>Run Time</th><th>Run Name</th>'
        f"<th>Expectation Suite</th></tr></thead><tbody>{body}</tbody></table>"
        f'<script>if (window.jQuery && jQuery.fn.bootstrapTable) document.getElementById("{PLAIN_INDEX}").hidden = true;</script>'
    )


_BYTECODE = FileSystemBytecodeCache()


class IndexBuilder(DefaultSiteIndexBuilder):
    """GX's index builder, reading the few fields a row of the index shows from each stored
    result's JSON: GX deserialises every stored result in full at every build, so the cost of a
    validation's docs grew with the validations the site keeps (360 kept: 1.50 s -> 0.94 s)."""

    def _add_validations_to_index_links(self, index_links_dict, validation_and_profiling_result_site_keys) -> None:
        section = self.site_section_builders_config["validations"]
        backend = self.data_context.stores[section["source_store_name"]].store_backend
        keys = [k for k in validation_and_profiling_result_site_keys if resource_key_passes_run_name_filter(k, section["run_name_filter"])]
        for key in sorted(keys, key=lambda k: k.run_id.run_time, reverse=True):
            stored = json.loads(backend.get(key.to_tuple()))
            meta = stored.get("meta", {})
            self.add_resource_info_to_index_links_dict(
                index_links_dict=index_links_dict,
                expectation_suite_name=key.expectation_suite_identifier.name,
                section_name="validations",
                batch_identifier=key.batch_identifier,
                run_id=key.run_id,
                validation_success=stored.get("success"),
                run_time=key.run_id.run_time,
                run_name=key.run_id.run_name,
                asset_name=(meta.get("active_batch_definition") or {}).get("data_asset_name"),
                batch_kwargs=meta.get("batch_kwargs", {}),
                batch_spec=meta.get("batch_spec", {}),
            )


def _backend(directory: str) -> dict:
    return {"module_name": __name__, "class_name": AtomicFilesystemStoreBackend.__name__, "base_directory": directory, "suppress_store_backend_id": True}


def _class(cls: type) -> dict:
    return {"module_name": __name__, "class_name": cls.__name__}


def site_context(docs_dir: str):
    """An ephemeral context whose results and suites stores, and its one docs site, are in `docs_dir`."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import DataContextConfig, InMemoryStoreBackendDefaults

    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False))
    for store, folder in ((config.expectations_store_name, SUITES), (config.validation_results_store_name, RESULTS)):
        config.stores[store]["store_backend"] = _backend(os.path.join(docs_dir, folder))
    context = gx.get_context(mode="ephemeral", project_config=config)
    site = {
        "class_name": "SiteBuilder",
        "store_backend": _backend(docs_dir),
        "site_index_builder": {**_class(IndexBuilder), "view": _class(IndexPageView)},
        "site_section_builders": {"expectations": {"view": _class(PageView)}, "validations": {"view": _class(PageView)}},
    }
    context.add_data_docs_site(SITE, site)
    return context


@contextmanager
def site_lock(docs_dir: str):
    """One writer of the site at a time, across processes (an advisory lock: local file systems)."""
    os.makedirs(docs_dir, exist_ok=True)
    with open(os.path.join(docs_dir, LOCK), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def publish(docs_dir: str, identifier, shown, suite) -> str | None:
    """Add one validation (its identifier, the escaped result `shown`, its suite) to the site; the path of its page."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    with site_lock(docs_dir):
        context = site_context(docs_dir)
        suite_key = ExpectationSuiteIdentifier(name=suite.name)
        context.expectations_store.set(suite_key, suite)  # not suites.add_or_update: it compares every expectation pair
        context.validation_results_store.set(identifier, shown)
        context.build_data_docs(site_names=[SITE], resource_identifiers=[identifier, suite_key])
        urls = context.get_docs_sites_urls(resource_identifier=identifier, site_names=[SITE])
    return unquote(urls[0]["site_url"].removeprefix("file://")) if urls else None
