from resources.storage import DatasetStore


def test_a_write_removes_the_temp_files_a_killed_writer_left(tmp_path):
    """A SIGKILL between write and rename leaves `part-0.parquet.tmp-*`; the next write of the dataset removes it."""
    import pandas as pd

    store = DatasetStore(base_path=str(tmp_path))
    target = store.path("applications", "2023-01")
    target.parent.mkdir(parents=True)
    leftover = target.parent / "part-0.parquet.tmp-0123abcd"
    leftover.write_bytes(b"half a file")
    store.write("applications", pd.DataFrame({"a": [1, 2]}), "2023-01")
    assert [p.name for p in target.parent.iterdir()] == ["part-0.parquet"]
    assert store.rows("applications", "2023-01") == 2
