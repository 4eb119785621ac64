"""Datasets as Parquet on any fsspec path (local disk, S3, GCS, ABFS), one file per partition."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import os
import re
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import dagster as dg
from upath import UPath

from riskcore.months import month_label
from riskcore.processes import ProcessId

if TYPE_CHECKING:
    import pandas as pd


def resolve_path(path: str, storage_options: dict[str, str]) -> UPath:
    """A local path (relative to the working directory) or any fsspec URL."""
    if "://" not in path:
        return UPath(os.path.abspath(path))
    return UPath(path, **storage_options)


def absolute_sqlite_url(url: str) -> str:
    """A `sqlite:///` URL made absolute (a relative one would follow the working directory), its folder created."""
    if not url.startswith("sqlite:///"):
        return url
    path = os.path.abspath(url.removeprefix("sqlite:///"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    return f"sqlite:///{path}"


def atomic_write_bytes(target: UPath, data: bytes) -> None:
    """Readers see the old file or the new one, never half of one.

    Local: write a sibling temp file and rename over the target (atomic on POSIX).
    Object stores: one PUT, which the stores make visible atomically.
    """
    if target.protocol in ("", "file", "local"):
        path = target.path
        os.makedirs(os.path.dirname(path), exist_ok=True)
        remove_leftovers(os.path.dirname(path))
        temp = temp_path(path)
        try:
            with open(temp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, path)
        finally:
            if os.path.exists(temp):
                os.remove(temp)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


# `<target>.tmp-<host>-<pid>-<process start>-<nonce>`: the writer is named, so a leftover can be told from a write in progress.
_TEMP = re.compile(r"\.tmp-(?P<writer>.+)-[0-9a-f]{8}$")
_LEGACY_TEMP = re.compile(r"\.tmp-[0-9a-f]{32}$")  # written before writers were named
UNKNOWN_WRITER_GRACE_SECONDS = 3600  # no single write takes an hour
_KEPT: dict = {}  # the last `DatasetStore.derived` value, under its partition's path, bytes' hash and name


def temp_path(path: str) -> str:
    """Where a write of `path` goes before its rename: beside it, named after this process."""
    return f"{path}.tmp-{ProcessId.current()}-{uuid.uuid4().hex[:8]}"


def remove_leftovers(folder: str) -> list[str]:
    """Remove the temp files that killed writers left in `folder` (every write into a folder calls it first).

    A temp file of a process that is gone is removed, whichever file it was for; one of a live writer
    (another run writing the same partition) is left alone. A writer on another host, or an unnamed
    one, cannot be asked: its temp file goes once it is an hour old."""
    removed = []
    for leftover in glob.glob(os.path.join(glob.escape(folder), "*.tmp-*")):
        name = os.path.basename(leftover)
        named = _TEMP.search(name)
        writer = ProcessId.parse(named["writer"]) if named else None
        alive = writer.alive() if writer else None
        if alive is None and (writer or _LEGACY_TEMP.search(name)):
            with contextlib.suppress(FileNotFoundError):
                alive = time.time() - os.path.getmtime(leftover) < UNKNOWN_WRITER_GRACE_SECONDS
        if alive is False:
            with contextlib.suppress(FileNotFoundError):
                os.remove(leftover)
                removed.append(leftover)
    return removed


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Deterministic Parquet: same frame, same bytes. A text categorical is stored as the text column
    an object column of the same values makes (readers get text, as before): a writer builds a
    million rows of a few distinct values as categories, and Arrow writes them without a Python
    string per row."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(_categories_as_text(pa.Table.from_pandas(frame, preserve_index=False)), buffer, compression="zstd")
    return buffer.getvalue()


def _categories_as_text(table):
    """Dictionary columns of text decoded (in Arrow), and pandas' metadata saying so."""
    import json

    import pyarrow as pa

    texts = [f.name for f in table.schema if pa.types.is_dictionary(f.type) and pa.types.is_string(f.type.value_type)]
    if not texts:
        return table
    for name in texts:
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(pa.string()))
    described = json.loads(table.schema.metadata[b"pandas"])
    for column in described["columns"]:
        if column["field_name"] in texts:
            column.update(pandas_type="unicode", numpy_type="object", metadata=None)
    return table.replace_schema_metadata({**table.schema.metadata, b"pandas": json.dumps(described).encode()})


@dataclass(frozen=True)
class WrittenDataset:
    path: str
    rows: int
    sha256: str

    def metadata(self) -> dict:
        return {"path": dg.MetadataValue.path(self.path), "rows": self.rows, "sha256": self.sha256}


class DatasetStore(dg.ConfigurableResource):
    """Where every asset's rows live: `<base_path>/<dataset>/month=YYYY-MM/part-0.parquet`."""

    base_path: str
    storage_options: dict[str, str] = {}

    def _root(self) -> UPath:
        return resolve_path(self.base_path, self.storage_options)

    def path(self, dataset: str, partition: str | None = None) -> UPath:
        folder = self._root() / dataset
        if partition is not None:
            folder = folder / f"month={month_label(partition)}"
        return folder / "part-0.parquet"

    def file(self, dataset: str, partition: str | None, name: str) -> UPath:
        """A named file beside the dataset's Parquet part (reports, HTML)."""
        return self.path(dataset, partition).parent / name

    def write(self, dataset: str, frame: pd.DataFrame, partition: str | None = None) -> WrittenDataset:
        data = parquet_bytes(frame)
        target = self.path(dataset, partition)
        atomic_write_bytes(target, data)
        return WrittenDataset(str(target), len(frame), hashlib.sha256(data).hexdigest())

    def write_table(self, dataset: str, partition: str | None, name: str, frame: pd.DataFrame) -> WrittenDataset:
        """A further table of a dataset's partition, `<name>.parquet` beside its part (a pack of tables)."""
        data = parquet_bytes(frame)
        target = self.file(dataset, partition, f"{name}.parquet")
        atomic_write_bytes(target, data)
        return WrittenDataset(str(target), len(frame), hashlib.sha256(data).hexdigest())

    def read_table(self, dataset: str, partition: str | None, name: str) -> pd.DataFrame:
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self.file(dataset, partition, f"{name}.parquet").read_bytes()))

    def read(self, dataset: str, partition: str | None = None, columns: list[str] | None = None, categories: list[str] | None = None) -> pd.DataFrame:
        """The dataset's rows; the text columns named in `categories` as pandas categoricals, read
        straight from Parquet's dictionary pages with no Python string per row: for columns of few
        distinct values (a month's lineage, decisions, reasons), a fraction of the time and memory."""
        import pandas as pd

        return pd.read_parquet(io.BytesIO(self._existing(dataset, partition).read_bytes()), columns=columns, read_dictionary=categories or None)

    def read_arrow(self, dataset: str, partition: str | None = None, columns: list[str] | None = None):
        """The dataset's rows as an Arrow table: for readers that compare or count values in Arrow."""
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(self._existing(dataset, partition).read_bytes()), columns=columns)

    def read_aligned(self, dataset: str, partition: str | None, ids, on: str, columns: list[str], categories: list[str] | None = None) -> pd.DataFrame:
        """`columns` of the dataset's row of each of `ids` (keys as `read_arrow` gives them), in their
        order. A month's datasets are written in one order: when the keys are `ids` as they are, the
        rows are read without them (a million keys neither made Python strings nor compared in pandas);
        otherwise aligned by key (`riskcore.joins.aligned`: an id without a row gets missing values)."""
        from riskcore.joins import aligned

        if self.read_arrow(dataset, partition, columns=[on]).column(on).cast(ids.type).equals(ids):  # string or large_string as written
            return self.read(dataset, partition, columns=columns, categories=categories)
        return aligned(ids.to_pandas(), self.read(dataset, partition, columns=[on, *columns], categories=categories), on)[columns]

    def _existing(self, dataset: str, partition: str | None) -> UPath:
        target = self.path(dataset, partition)
        if not target.exists():
            where = f" for month {month_label(partition)}" if partition else ""
            raise FileNotFoundError(f"dataset '{dataset}'{where} has not been materialised: {target} is missing")
        return target

    def read_many(self, dataset: str, partitions: list[str], columns: list[str] | None = None) -> pd.DataFrame:
        import pandas as pd

        return pd.concat([self.read(dataset, p, columns=columns) for p in partitions], ignore_index=True)

    def rows(self, dataset: str, partition: str | None = None) -> int:
        """Row count from the Parquet footer, without reading the data."""
        import pyarrow.parquet as pq

        with self.path(dataset, partition).open("rb") as handle:
            return pq.ParquetFile(handle).metadata.num_rows

    def columns(self, dataset: str, partition: str | None = None) -> list[str]:
        """Column names from the Parquet footer, without reading the data."""
        import pyarrow.parquet as pq

        with self.path(dataset, partition).open("rb") as handle:
            return list(pq.ParquetFile(handle).schema_arrow.names)

    def text_columns(self, dataset: str, partition: str | None = None) -> list[str]:
        """Names of the text columns, from the Parquet footer."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with self._existing(dataset, partition).open("rb") as handle:
            return [f.name for f in pq.ParquetFile(handle).schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]

    def derived(self, dataset: str, partition: str | None, name: str, derive):
        """`derive()`, what a step makes of the partition (its rows as the checks read them, the model's
        view of them), made once for the partition's current bytes: the next step of the same run
        (Dagster's in-process executor) asking for the same `name` gets it without reading and
        converting a million rows again; rewritten bytes are read again. The last value only is kept
        (released before the next is made); callers must not modify it."""
        key = (str(self.path(dataset, partition)), self.sha256(dataset, partition), name)
        if _KEPT.get("key") != key:
            _KEPT.clear()
            _KEPT.update(key=key, value=derive())
        return _KEPT["value"]

    def sha256(self, dataset: str, partition: str | None = None) -> str:
        return hashlib.sha256(self._existing(dataset, partition).read_bytes()).hexdigest()

    def partitions(self, dataset: str) -> list[str]:
        """Months for which the dataset has been written."""
        folder = self._root() / dataset
        if not folder.exists():
            return []
        months = [p.name.removeprefix("month=") for p in folder.iterdir() if p.name.startswith("month=") and (p / "part-0.parquet").exists()]
        return sorted(months)
