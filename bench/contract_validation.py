"""Validating a 1M-row month against the full contract, quarantine included, against GX COMPLETE.

`python -m bench.contract_validation --rows 1000000`. Each side runs in its own process so the
peak memory (max RSS) is its own; both start from the same Parquet landing file.

- ours: parse, cast and apply every row rule (quarantine with reasons, counted per rule),
  then the GX suite of the dataset rules (BASIC results) for the verdict, as at ingestion;
- peer: the same suite in GX with the COMPLETE result format, which is what a GX-only
  pipeline needs to find the failing rows (their indexes) for quarantine.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

from bench.isolated import report, run_child


def make_file(path: str, rows: int) -> None:
    from resources.storage import parquet_bytes
    from riskcore.synthetic import applications_frame, generate_month

    frame = applications_frame(generate_month(42, "2023-01", rows))
    bad = frame.index[::200]  # 0.5% of rows break a row rule
    frame.loc[bad, "employment_type"] = "astronaut"
    Path(path).write_bytes(parquet_bytes(frame))


def ours(path: str) -> dict:
    import great_expectations  # noqa: F401  imported before the clock, as the peer does: a code server has it loaded

    from checks import contract_path
    from checks.validation import ContractValidator
    from riskcore.contract import load_contract
    from riskcore.ingestion import judge, read_landing_bytes, split

    contract = load_contract(contract_path("loan_applications.yaml"))
    started = time.perf_counter()
    landed = read_landing_bytes(Path(path).name, Path(path).read_bytes())
    checked, reasons, _ = judge(landed, contract, "2023-01")
    accepted, quarantined = split(checked, reasons)
    report = ContractValidator().validate(checked, contract, batch="bench", row_rules=False)
    return {"seconds": time.perf_counter() - started, "quarantined": len(quarantined), "failed_rules": report.failed, "evaluated": report.evaluated}


def peer(path: str) -> dict:
    import great_expectations as gx

    from checks import contract_path
    from checks.suites import build_suite
    from riskcore.contract import load_contract
    from riskcore.ingestion import read_landing_bytes

    contract = load_contract(contract_path("loan_applications.yaml"))
    started = time.perf_counter()
    frame = read_landing_bytes(Path(path).name, Path(path).read_bytes()).frame
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False, "metric_calculations": False}
    batch = context.data_sources.add_pandas("bench").add_dataframe_asset("a").add_batch_definition_whole_dataframe("b")
    suite = context.suites.add(build_suite(contract, columns=list(frame.columns)))
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="v", data=batch, suite=suite))
    result = definition.run(batch_parameters={"dataframe": frame}, result_format={"result_format": "COMPLETE"})
    flagged = set()
    for outcome in result.results:
        flagged.update((outcome.result or {}).get("unexpected_index_list") or [])
    return {"seconds": time.perf_counter() - started, "rows_flagged": len(flagged), "evaluated": len(result.results)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--role", choices=["ours", "peer"])
    parser.add_argument("--file")
    args = parser.parse_args(argv)
    if args.role:
        return report((ours if args.role == "ours" else peer)(args.file))
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "2023-01.parquet")
        make_file(path, args.rows)
        mine, theirs = (run_child("bench.contract_validation", "--role", role, "--file", path) for role in ("ours", "peer"))
    print(f"contract validation of {args.rows:,} rows, quarantine included (GX expectations: ours {mine['evaluated']}, peer {theirs['evaluated']})")
    print(f"  ours (conform + GX BASIC)  : {mine['seconds']:6.1f} s  peak {mine['peak_mb']:6.0f} MB  quarantined {mine['quarantined']:,}")
    print(f"  peer (GX COMPLETE):          {theirs['seconds']:6.1f} s  peak {theirs['peak_mb']:6.0f} MB  rows flagged {theirs['rows_flagged']:,}")
    print(f"  ratio ours/peer: time {mine['seconds'] / theirs['seconds']:.2f}, memory {mine['peak_mb'] / theirs['peak_mb']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
