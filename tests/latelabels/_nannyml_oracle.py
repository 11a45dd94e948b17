"""Run inside the nannyml venv (not the project's environment): NannyML's CBPE on the same data.

argv: reference.parquet analysis.parquet chunk_size threshold out.json. Columns: score, y (reference only).
Scores go through NannyML's NoopCalibrator (the project's estimate does not recalibrate by default); whether
NannyML's own check would have calibrated them is reported as ``needs_calibration``."""

import json
import sys
import time

import nannyml as nml
import pandas as pd
from nannyml.calibration import IsotonicCalibrator, NoopCalibrator, needs_calibration

ref_path, ana_path, chunk_size, threshold, out = sys.argv[1:6]
ref = pd.read_parquet(ref_path)
ana = pd.read_parquet(ana_path)
for df in (ref, ana):
    df["y_pred"] = (df["score"] >= float(threshold)).astype(int)
started = time.perf_counter()
est = nml.CBPE(
    y_pred_proba="score",
    y_pred="y_pred",
    y_true="y",
    problem_type="classification_binary",
    metrics=["roc_auc", "accuracy"],
    chunk_size=int(chunk_size),
    calibrator=NoopCalibrator(),
)
est.fit(ref)
res = est.estimate(ana).filter(period="analysis").to_df()
seconds = time.perf_counter() - started
rows = []
for _, r in res.iterrows():
    rows.append(
        {
            "start": int(r[("chunk", "start_index")]),
            "end": int(r[("chunk", "end_index")]),
            "roc_auc": float(r[("roc_auc", "value")]),
            "roc_auc_low": float(r[("roc_auc", "lower_confidence_boundary")]),
            "roc_auc_high": float(r[("roc_auc", "upper_confidence_boundary")]),
            "accuracy": float(r[("accuracy", "value")]),
        }
    )
nc = bool(needs_calibration(ref["y"].to_numpy(), ref["score"].to_numpy(), IsotonicCalibrator()))
with open(out, "w") as fh:
    json.dump({"chunks": rows, "seconds": seconds, "needs_calibration": nc, "version": nml.__version__}, fh)
