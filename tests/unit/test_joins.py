import pandas as pd
import pytest

from riskcore.joins import join


def test_a_join_is_pandas_merge_and_refuses_what_its_validate_refuses():
    left = pd.DataFrame({"id": ["a", "b", "c"], "pd": [0.1, 0.2, 0.3]})
    right = pd.DataFrame({"id": ["c", "a", "d"], "defaulted": [1, 0, 1]})
    for how in ("inner", "left"):
        pd.testing.assert_frame_equal(join(left, right, "id", "one_to_one", how=how), left.merge(right, on="id", how=how, validate="one_to_one"))
    repeated = pd.concat([right, right.head(1)], ignore_index=True)  # "c" twice on the right
    pd.testing.assert_frame_equal(join(left, repeated, "id", "one_to_many"), left.merge(repeated, on="id", validate="one_to_many"))
    for validate in ("one_to_one", "many_to_one"):
        with pytest.raises(pd.errors.MergeError) as theirs:
            left.merge(repeated, on="id", validate=validate)
        with pytest.raises(pd.errors.MergeError, match=f"^{theirs.value}$"):
            join(left, repeated, "id", validate)


def test_aligned_gives_each_ids_row_in_their_order_whether_or_not_they_line_up():
    from riskcore.joins import aligned

    frame = pd.DataFrame({"id": pd.array(["a", "b", "c"], dtype="string"), "pd": [0.1, 0.2, 0.3]}, index=[7, 8, 9])
    in_order = pd.Series(["a", "b", "c"], dtype=object)
    assert aligned(in_order, frame, "id")["pd"].tolist() == [0.1, 0.2, 0.3]
    assert aligned(pd.Series(["c", "a", "c", "x"]), frame, "id")["pd"].tolist()[:3] == [0.3, 0.1, 0.3]  # repeated, missing: a left join
    assert aligned(pd.Series(["c", "a", "c", "x"]), frame, "id")["pd"].isna().tolist() == [False, False, False, True]
    with pytest.raises(pd.errors.MergeError):
        aligned(pd.Series(["b", "a"]), pd.concat([frame, frame.head(1)]), "id")  # a key twice in the frame
    with pytest.raises(KeyError, match=r"1 of 4 ids have no row to align with \(first: 'x'\)"):
        aligned(pd.Series(["c", "a", "c", "x"]), frame, "id", complete=True)
    assert aligned(pd.Series(["c", "a"]), frame, "id", complete=True)["pd"].tolist() == [0.3, 0.1]  # no indicator column left
    assert list(aligned(pd.Series(["c", "a"]), frame, "id", complete=True).columns) == ["id", "pd"]


def test_id_reconciliation_counts_the_same_whether_or_not_the_scores_line_up_with_the_applications():
    import pyarrow as pa

    from riskcore.joins import id_reconciliation

    applications = pa.chunked_array([["a", "b"], ["c", "d"]])
    clean = {"applications": 4, "scores": 4, "duplicate_scores": 0, "unscored": 0, "scores_without_application": 0}
    assert id_reconciliation(applications, pa.chunked_array([["a", "b", "c", "d"]])) == clean  # in order, chunked otherwise
    assert id_reconciliation(applications, pa.chunked_array([["d", "b", "a", "c"]])) == clean
    assert id_reconciliation(applications, pa.chunked_array([["a", "b", "b", "x"]])) == {
        "applications": 4,
        "scores": 4,
        "duplicate_scores": 1,
        "unscored": 2,
        "scores_without_application": 1,
    }
    assert id_reconciliation(applications, pa.chunked_array([["a", "b", "c"]]))["unscored"] == 1
