"""Reading bank data (issue 19), without a registry: encodings and byte-order marks, the positive class of a
labelled target, and the declared feature schema (MLflow signature, model card, validation baseline) that the
data must fit. Messages are checked word for word where users read them."""

from __future__ import annotations

import codecs
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from modelreg.errors import BadInput


def _frame(n: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "收入": rng.normal(5, 1, n),
            "职业": rng.choice(["教师", "工程师", "个体户"], n),
            "违约": rng.choice(["是", "否"], n),
        }
    )


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "utf-8", "utf-8-sig"])
def test_every_offered_encoding_reads_back_the_same_frame(tmp_path, encoding):
    from modelreg.datasets import read_table

    frame = _frame()
    path = tmp_path / f"{encoding}.csv"
    frame.to_csv(path, index=False, encoding=encoding)
    got = read_table(path, encoding=encoding)
    pd.testing.assert_frame_equal(got, frame)
    if encoding == "utf-8-sig":  # a BOM is found without being told, and is not part of the first name
        pd.testing.assert_frame_equal(read_table(path), frame)
        assert read_table(path, encoding="gbk").columns[0] == "收入"


def test_undecodable_text_and_unknown_encodings_are_one_line_naming_the_options(tmp_path):
    from modelreg.cli.common import ENCODINGS as CLI_ENCODINGS
    from modelreg.datasets import ENCODINGS, read_table

    assert CLI_ENCODINGS == ENCODINGS
    path = tmp_path / "export.csv"
    _frame().to_csv(path, index=False, encoding="gbk")
    with pytest.raises(BadInput) as err:
        read_table(path, what="--data")
    first = "收入".encode("gbk")[0]
    assert str(err.value) == (
        f"--data: export.csv is not valid utf-8 text (byte 0x{first:02x} at offset 0); "
        "pass --encoding gbk or gb18030 (one of utf-8, utf-8-sig, gbk, gb18030)"
    )
    with pytest.raises(
        BadInput, match=r"^--encoding must be one of utf-8, utf-8-sig, gbk, gb18030\. Got 'big5' instead\.$"
    ):
        read_table(path, encoding="big5")
    assert read_table(path, encoding="CP936").shape == (40, 3)  # Windows' name for GBK
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(codecs.BOM_UTF16_LE + "a,b\n1,2\n".encode("utf-16-le"))
    with pytest.raises(BadInput, match="UTF-16-encoded"):
        read_table(utf16)


def test_positive_label_must_name_one_of_two_labels():
    from modelreg.governance.runner import resolve_positive_label

    frame = _frame()
    assert resolve_positive_label(frame, "违约", "是") == (
        "是",
        "target 违约: '是' is the positive class, '否' the negative",
    )
    with pytest.raises(
        BadInput, match=r"^--target 违约 must be binary with 1 = the positive class\. Got 2 label\(s\)"
    ):
        resolve_positive_label(frame, "违约", None)
    with pytest.raises(BadInput, match="--positive-label 'Y' is not a label of --target 违约"):
        resolve_positive_label(frame, "违约", "Y")
    three = frame.assign(违约=np.resize(["是", "否", "未知"], len(frame)))
    with pytest.raises(BadInput, match=r"must be binary\. Got 3 labels"):
        resolve_positive_label(three, "违约", "是")
    # numeric targets: 0/1 need no label; a label typed on the command line is read as the number
    numeric = frame.assign(y=np.resize([0, 1], len(frame)), z=np.resize([1, 2], len(frame)))
    assert resolve_positive_label(numeric, "y", None) == (1, None)
    assert resolve_positive_label(numeric, "z", "2")[0] == 2
    with pytest.raises(BadInput, match="must be binary with 1 = the positive class"):
        resolve_positive_label(numeric, "z", None)


def test_performance_uses_the_declared_positive_class():
    """AUC with 违约 = 是 equals sklearn's on the 0/1 recoding (no silent all-negative target)."""
    from sklearn.metrics import roc_auc_score

    from modelreg.governance.runner import EvaluationInput, build
    from monitors.performance import PerformanceMonitor

    frame = _frame(400)
    rng = np.random.default_rng(1)
    frame["score"] = np.clip((frame["违约"] == "是") * 0.3 + rng.uniform(0, 0.7, len(frame)), 0, 1)
    notes: list[str] = []
    spec, current, *_ = build(
        EvaluationInput(data=frame, target="违约", score="score", positive_label="是", features=("收入",)),
        notes,
    )
    auc = PerformanceMonitor().run(spec, current=current).value("auc")
    assert auc == pytest.approx(roc_auc_score(frame["违约"] == "是", frame["score"]), abs=1e-12)
    assert notes == ["target 违约: '是' is the positive class, '否' the negative"]


def _mv(signature=None, card=None):
    return SimpleNamespace(mlflow={"signature": signature} if signature else {}, model_card=card or {})


def test_schema_comes_from_baseline_then_signature_then_card():
    from modelreg.governance.runner import EvaluationInput
    from modelreg.governance.service import _declared_schema

    signature = {
        "inputs": [{"type": "double", "name": "收入", "required": True}, {"type": "string", "name": "职业"}]
    }
    card = {"feature_schema": {"收入": "numeric", "职业": "categorical"}}
    base = {"features": [{"name": "收入", "kind": "numeric"}], "positive_label": "是"}

    inp = EvaluationInput(data=None, target="违约")
    _declared_schema(inp, _mv(signature, card), base)
    assert inp.schema == {"收入": "numeric"} and inp.schema_source == "the validation baseline's spec"
    assert inp.positive_label == "是"

    inp = EvaluationInput(data=None)
    _declared_schema(inp, _mv(signature, card), None)
    assert (
        inp.schema == {"收入": "double", "职业": "string"}
        and inp.schema_source == "the MLflow model signature"
    )

    inp = EvaluationInput(data=None)
    _declared_schema(inp, _mv(None, card), None)
    assert inp.schema_source == "the model card's feature_schema"
    with pytest.raises(BadInput, match="feature_schema must map feature names to numeric or categorical"):
        _declared_schema(EvaluationInput(data=None), _mv(None, {"feature_schema": {"收入": "money"}}), None)


def test_data_that_does_not_fit_the_declared_schema_is_bad_input():
    from modelreg.governance.runner import EvaluationInput, build

    frame = _frame().astype({"收入": object})
    frame.loc[frame.index[:10], "收入"] = "abc"
    schema = {"收入": "numeric", "职业": "categorical"}
    with pytest.raises(BadInput) as err:
        build(EvaluationInput(data=frame, schema=schema, schema_source="the model card's feature_schema"))
    assert str(err.value) == (
        "--data does not fit the feature schema (the model card's feature_schema): numeric feature(s) 收入 has "
        "10 non-numeric value(s) ('abc'). Fix the cells or declare the feature categorical"
    )
    # without a declaration the reference (training) data's types decide, not the hold-out's own
    clean = _frame()
    with pytest.raises(
        BadInput, match=r"\(the reference data's column types\): numeric feature\(s\) 收入 has 10"
    ):
        build(EvaluationInput(data=frame, reference=clean, features=("收入", "职业")))
    # text that is all numbers is converted (e.g. a column read as text), and the spec says numeric
    texty = clean.assign(收入=clean["收入"].map(repr).astype(object))
    spec, current, *_ = build(EvaluationInput(data=texty, schema=schema))
    assert spec.feature("收入").kind.value == "numeric" and current["收入"].dtype == float


def test_implausible_values_fail_the_monitor_gate_on_pandas_and_duckdb(tmp_path):
    """The data_quality ranges saved by a validation run judge a Parquet scoring log the same way whether
    the reduction runs in pandas or DuckDB."""
    import lightgbm as lgb

    from modelreg.governance.runner import EvaluationInput, run
    from modelreg.policy import load_pack
    from monitors.base import ReferenceProfile
    from tests.governance.german import FEATURES, german_frame, split

    s = split(german_frame())
    model = lgb.LGBMClassifier(n_estimators=20, verbose=-1, random_state=0).fit(
        s.train[FEATURES], s.train["default"]
    )
    train, month = s.train.copy(), s.holdout.copy()
    train["score"] = model.predict_proba(train[FEATURES])[:, 1]
    month["score"] = model.predict_proba(month[FEATURES])[:, 1]
    month.loc[month.index[:2], "duration"] = 1e300
    month.to_parquet(tmp_path / "month.parquet")
    pack = load_pack("cn-fin-algo-risk")
    common = {"target": "default", "score": "score", "sensitive": ("sex",), "features": tuple(FEATURES)}
    base = run(pack, "deploy", "high", EvaluationInput(data=train, reference=train, **common))
    profiles = {"data_quality": ReferenceProfile.from_json(base.profiles["data_quality"].decode())}
    drift_profile = ReferenceProfile.from_json(base.reference_profile.decode())
    seen = {}
    for engine in ("pandas", "duckdb"):
        draft = run(
            pack,
            "monitor",
            "high",
            EvaluationInput(data=str(tmp_path / "month.parquet"), engine=engine, **common),
            profile=drift_profile,
            profiles=profiles,
        )
        seen[engine] = {o.control_id: (o.status, o.feature, o.value) for o in draft.outcomes}
    assert seen["pandas"]["CHK-DRIFT-03.implausible"] == ("fail", "duration", pytest.approx(2 / len(month)))
    assert seen["duckdb"]["CHK-DRIFT-03.implausible"] == seen["pandas"]["CHK-DRIFT-03.implausible"]
    assert seen["duckdb"]["CHK-DRIFT-03.out_of_range"] == seen["pandas"]["CHK-DRIFT-03.out_of_range"]
