"""The data_quality monitor against numbers computed by hand with numpy, and the CJK chart font checked on the
rendered pixels (性别/男/女 are real glyphs, not the missing-glyph box, and no "Glyph missing" warning)."""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from monitors.base import ColumnSpec, Feature, MetricStatus


def _spec() -> ColumnSpec:
    return ColumnSpec((Feature("income"), Feature("年龄"), Feature("性别", "categorical")))


def _frames(seed: int = 0, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def make(m: int) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "income": rng.normal(5.0, 1.5, m),
                "年龄": rng.uniform(20.0, 70.0, m),
                "性别": rng.choice(["男", "女"], m),
            }
        )

    return make(n), make(n // 2)


def test_missing_share_range_and_plausibility_match_a_hand_computation():
    from monitors.data_quality import DataQualityMonitor

    ref, cur = _frames()
    cur = cur.copy()
    cur.loc[cur.index[::2], "年龄"] = np.nan  # a half-missing column
    cur.loc[cur.index[:3], "income"] = [1e300, -np.inf, ref["income"].max() + 0.5]
    res = DataQualityMonitor().run(_spec(), reference=ref, current=cur)
    assert res.status is MetricStatus.OK, res.reason

    age = cur["年龄"]
    assert res.value("missing_share", feature="年龄") == pytest.approx(age.isna().mean())
    assert res.value("max_missing_share") == pytest.approx(0.5)

    lo, hi = ref["income"].min(), ref["income"].max()
    span = hi - lo
    vals = cur["income"].to_numpy()
    outside = ((vals < lo) | (vals > hi)).mean()
    implausible = ((vals < lo - 10 * span) | (vals > hi + 10 * span)).mean()
    assert res.value("out_of_range_share", feature="income") == pytest.approx(outside)
    assert res.value("implausible_share", feature="income") == pytest.approx(implausible)
    assert res.value("implausible_share", feature="income") == pytest.approx(2 / len(cur))  # 1e300 and -inf
    assert any("income: 2 implausible value(s)" in n and "1e+300" in n for n in res.notes)
    assert res.value("constant_features") == 0.0
    # categorical features have no range metrics; the worst numeric feature decides the dataset level
    assert not [m for m in res.metrics if m.feature == "性别" and m.name == "out_of_range_share"]
    assert res.value("max_implausible_share") == pytest.approx(2 / len(cur))


def test_profile_gives_the_same_numbers_as_the_raw_reference_and_constant_columns_count():
    from monitors.base import ReferenceProfile
    from monitors.data_quality import DataQualityMonitor

    ref, cur = _frames(seed=1)
    cur = cur.assign(性别="男")  # constant in the hold-out
    mon = DataQualityMonitor()
    direct = mon.run(_spec(), reference=ref, current=cur)
    profile = ReferenceProfile.from_json(mon.profile(_spec(), ref).to_json())
    via_profile = mon.run(_spec(), profile=profile, current=cur)
    for name in ("out_of_range_share", "implausible_share"):
        for feat in ("income", "年龄"):
            assert via_profile.value(name, feature=feat) == direct.value(name, feature=feat)
    assert direct.value("constant", feature="性别") == 1.0 and direct.value("constant_features") == 1.0


def test_without_reference_the_range_metrics_say_why():
    from monitors.data_quality import DataQualityMonitor

    _, cur = _frames()
    res = DataQualityMonitor().run(_spec(), current=cur)
    m = res.metric("implausible_share", feature="income")
    assert m.status is MetricStatus.INSUFFICIENT_DATA and "reference" in m.reason
    assert res.value("missing_share", feature="income") == 0.0


def _render(text: str) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from monitors.charts import chart_style

    with chart_style():
        fig = Figure(figsize=(1.2, 0.6), dpi=100)
        canvas = FigureCanvasAgg(fig)
        fig.text(0.05, 0.3, text, fontsize=20)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def test_cjk_glyphs_render_as_glyphs_not_boxes_and_without_warnings(caplog):
    from monitors.charts import cjk_family

    assert cjk_family() is not None, "no CJK font found: install fonts-wqy-zenhei (tests/run.sh does)"
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING, "matplotlib"):
        warnings.simplefilter("always")
        male, female, sex = _render("男"), _render("女"), _render("性别")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # these two are meant to be missing
        # U+E000/U+E001 are private-use code points no font here draws: both come out as the same box
        box1, box2, boxes = _render("\ue000"), _render("\ue001"), _render("\ue000\ue001")
    assert np.array_equal(box1, box2), "the reference for a missing glyph should be one identical box"
    for img in (male, female):
        assert not np.array_equal(img, box1), "a CJK character rendered as the missing-glyph box"
        assert (img < 128).any(), "nothing was drawn"
    assert not np.array_equal(male, female)
    assert not np.array_equal(sex, boxes)
    glyph_warnings = [str(w.message) for w in caught if "Glyph" in str(w.message)]
    assert glyph_warnings == [] and not [r for r in caplog.records if "findfont" in r.getMessage()]


def test_fairness_chart_draws_chinese_group_names(tmp_path):
    """The fairness monitor's PNG with groups 男/女 differs from the same chart whose labels are boxes."""
    from PIL import Image

    from monitors.fairness import FairnessMonitor

    rng = np.random.default_rng(3)
    n = 600
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "性别": rng.choice(["男", "女"], n),
            "y": rng.integers(0, 2, n),
        }
    )
    frame["score"] = rng.uniform(size=n)
    spec = ColumnSpec((Feature("x"),), target="y", score="score", sensitive=("性别",))

    def png(df: pd.DataFrame, folder) -> np.ndarray:
        res = FairnessMonitor().run(spec, current=df, params={"bootstrap": 0}, artifacts_dir=folder)
        (art,) = [a for a in res.artifacts if a.name.endswith(".png")]
        return np.asarray(Image.open(io.BytesIO((folder / art.name).read_bytes())).convert("RGB"))

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chinese = png(frame, tmp_path / "zh")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boxed = png(frame.assign(性别=frame["性别"].map({"男": "\ue000", "女": "\ue001"})), tmp_path / "bx")
    assert chinese.shape == boxed.shape and not np.array_equal(chinese, boxed)
    assert [str(w.message) for w in caught if "Glyph" in str(w.message)] == []
