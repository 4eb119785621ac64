import pandas as pd

from riskcore.months import in_window, sample_windows


def test_training_windows_and_in_sample_months():
    frame = pd.DataFrame({"sample": ["train", "train", "out_of_time"], "application_month": ["2023-03", "2023-01", "2023-04"]})
    windows = sample_windows(frame, "sample", "application_month")
    assert windows == {"train": "2023-01..2023-03", "out_of_time": "2023-04..2023-04"}
    assert in_window("2023-01", windows["train"]) and in_window("2023-03-01", windows["train"])
    assert not in_window("2022-12", windows["train"]) and not in_window("2023-04", windows["train"])
