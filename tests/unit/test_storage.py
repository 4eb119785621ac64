import os
import subprocess
import sys
import time

import pandas as pd
import pyarrow as pa

from resources.storage import DatasetStore, remove_leftovers, temp_path
from riskcore.processes import ProcessId


def _gone_process() -> ProcessId:
    """The identity of a real process that has ended."""
    code = "from riskcore.processes import ProcessId; print(ProcessId.current())"
    process = ProcessId.parse(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip())
    assert process is not None and process.alive() is False
    return process


def test_a_write_removes_the_temp_files_killed_writers_left_in_its_folder(tmp_path):
    """A SIGKILL between write and rename leaves `part-0.parquet.tmp-<writer>-<nonce>`; the next write into the
    folder removes it, and those of any other file of the folder whose writer is gone (a report's JSON, say)."""
    store = DatasetStore(base_path=str(tmp_path))
    target = store.path("applications", "2023-01")
    target.parent.mkdir(parents=True)
    gone = _gone_process()
    leftovers = [target.parent / f"part-0.parquet.tmp-{gone}-0123abcd", target.parent / f"report.json.tmp-{gone}-89abcdef"]
    for leftover in leftovers:
        leftover.write_bytes(b"half a file")
    store.write("applications", pd.DataFrame({"a": [1, 2]}), "2023-01")
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]
    assert store.rows("applications", "2023-01") == 2


def test_a_live_writers_temp_file_is_left_alone_and_a_reused_pid_is_not_taken_for_its_writer(tmp_path):
    folder = tmp_path / "month=2023-01"
    folder.mkdir()
    live = temp_path(str(folder / "part-0.parquet"))  # this process: a write in progress
    me = ProcessId.current()
    reused = folder / f"part-0.parquet.tmp-{ProcessId(me.host, me.pid, me.started + 1)}-0123abcd"  # same pid, another process
    for path in (live, reused):
        open(path, "wb").close()
    assert remove_leftovers(str(folder)) == [str(reused)]
    assert os.path.exists(live)


def test_a_temp_file_whose_writer_cannot_be_asked_goes_once_an_hour_old(tmp_path):
    """Another host's writer, or an unnamed one (written before writers were named): only age tells."""
    names = ["a.parquet.tmp-otherhost-12-34-0123abcd", f"b.parquet.tmp-{'0' * 32}"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.tmp-mine").write_bytes(b"not a temp file of ours")
    assert remove_leftovers(str(tmp_path)) == []
    hour_ago = time.time() - 3700
    for name in names:
        os.utime(tmp_path / name, (hour_ago, hour_ago))
    assert sorted(os.path.basename(p) for p in remove_leftovers(str(tmp_path))) == sorted(names)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.tmp-mine"]


def test_text_categories_are_written_as_the_text_an_object_column_makes(tmp_path):
    """Scoring builds its text columns as categories; the file is byte for byte the one its text makes."""
    store = DatasetStore(base_path=str(tmp_path))
    text = pd.DataFrame({"id": ["a", "b", "c"], "decision": ["approve", None, "refer"], "points": [1, 2, 3]})
    as_text = store.write("as_text", text, "2024-01")
    as_categories = store.write("as_categories", text.astype({"decision": "category"}), "2024-01")
    assert as_categories.sha256 == as_text.sha256
    assert store.read("as_categories", "2024-01")["decision"].dtype == object
    # a reader of distinct values asks for categories
    assert store.text_columns("as_text", "2024-01") == ["id", "decision"]
    read = store.read("as_text", "2024-01", categories=["decision"])["decision"]
    assert read.dtype == "category" and read.astype(object).where(read.notna(), None).tolist() == ["approve", None, "refer"]


def test_a_derived_value_is_made_once_for_the_partitions_bytes_and_again_once_they_are_rewritten(tmp_path):
    """What one step made of a month (the checks' rows, the model matrix) serves the next step of the
    run; a rewritten month, another name or another month is made again from what is on disk."""
    store = DatasetStore(base_path=str(tmp_path))
    store.write("scores", pd.DataFrame({"pd": [0.1, 0.2]}), "2023-01")
    store.write("scores", pd.DataFrame({"pd": [0.3]}), "2023-02")
    made = []

    def total(month, name="total"):
        return store.derived("scores", month, name, lambda: made.append(month) or float(store.read("scores", month)["pd"].sum()))

    assert total("2023-01") == total("2023-01") == 0.1 + 0.2
    assert made == ["2023-01"]
    store.write("scores", pd.DataFrame({"pd": [0.5, 0.5]}), "2023-01")
    assert total("2023-01") == 1.0
    assert total("2023-02") == 0.3
    assert total("2023-02", "another") == 0.3
    assert made == ["2023-01", "2023-01", "2023-02", "2023-02"]


def test_read_aligned_gives_each_ids_row_whether_written_in_their_order_or_not(tmp_path):
    """Keys as written (string or large_string): read without them when in the ids' order, joined when not."""
    store = DatasetStore(base_path=str(tmp_path))
    scores = pd.DataFrame({"id": ["a", "b", "c"], "pd": [0.1, 0.2, 0.3]})
    store.write("scores", scores, "2023-05")
    ids = store.read_arrow("scores", "2023-05", columns=["id"]).column("id")
    groups = pd.DataFrame({"id": pd.array(["a", "b", "c"], dtype=pd.ArrowDtype(pa.large_string())), "sex": ["F", "M", "F"]})  # as applications are
    for written, expected in ((groups, ["F", "M", "F"]), (groups.iloc[::-1], ["F", "M", "F"]), (groups.iloc[1:], [None, "M", "F"])):
        store.write("applications", written, "2023-05")
        read = store.read_aligned("applications", "2023-05", ids, "id", ["sex"])
        assert list(read.columns) == ["sex"] and [None if pd.isna(v) else v for v in read["sex"]] == expected
