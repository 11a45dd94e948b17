"""Chart text that can show Chinese: one CJK-capable font for every monitor chart.

Matplotlib's default DejaVu Sans has no CJK glyphs, so feature names such as 性别 and groups such as 男/女
come out as empty boxes, with a "Glyph ... missing" warning per character. ``chart_style`` puts a CJK
font behind DejaVu Sans (matplotlib falls back per glyph), found among the fonts matplotlib already knows or
the usual Debian/macOS/Windows files (fonts-wqy-zenhei, fonts-noto-cjk, ...), registered once per process.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

#: Families tried first, in order, when matplotlib already knows them.
CJK_FAMILIES: tuple[str, ...] = (
    "WenQuanYi Zen Hei",
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "Sarasa Gothic SC",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
    "AR PL UKai CN",
    "AR PL UMing CN",
    "Droid Sans Fallback",
)

#: Font files to register when matplotlib's cache does not list a CJK family (it is built once, often
#: before the font package was installed). Globs, tried in order.
CJK_FILES: tuple[str, ...] = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf",
    "/usr/share/fonts/**/NotoSansCJK*-Regular.tt[cf]",
    "/usr/share/fonts/**/NotoSansSC*.[ot]tf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/System/Library/Fonts/PingFang.ttc",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/msyh.ttc",
    "C:/Windows/Fonts/simhei.ttf",
)

LATIN_FAMILY = "DejaVu Sans"


@functools.cache
def cjk_family() -> str | None:
    """The family name of a CJK-capable font matplotlib can use, registering its file if needed; None when
    the machine has none (install fonts-wqy-zenhei or fonts-noto-cjk)."""
    from matplotlib import font_manager

    known = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in known:
            return _regular(family)
    for pattern in CJK_FILES:
        for path in sorted(glob.glob(pattern, recursive=True)):
            if not Path(path).is_file():
                continue
            try:
                font_manager.fontManager.addfont(path)
                return _regular(font_manager.FontProperties(fname=path).get_name())
            except (OSError, RuntimeError, ValueError):  # an unreadable or unsupported font file
                continue
    return None


def _regular(family: str) -> str:
    """Several CJK fonts ship one face whose weight is "medium" (WenQuanYi Zen Hei: 500); matplotlib then
    logs "Failed to find font weight normal" on every text. That face is the family's regular one: record
    it as such (only when the family has no face of normal weight)."""
    import dataclasses

    from matplotlib import font_manager

    entries = font_manager.fontManager.ttflist
    faces = [f for f in entries if f.name == family]
    if faces and not any(font_manager._normalize_weight(f.weight) == 400 for f in faces):
        for i, f in enumerate(entries):
            if f.name == family and f.style == "normal":
                entries[i] = dataclasses.replace(f, weight=400)
        font_manager.fontManager._findfont_cached.cache_clear()
    return family


@contextlib.contextmanager
def chart_style() -> Iterator[str | None]:
    """Build and save a figure inside this context: Latin text in DejaVu Sans, CJK text in the CJK font.
    Yields the CJK family (None if there is none: Chinese text then renders as boxes, one warning per
    missing glyph, which is what a reader of stderr should see)."""
    import matplotlib

    family = cjk_family()
    rc: dict[str, object] = {"axes.unicode_minus": False}
    if family is not None:
        rc["font.family"] = [LATIN_FAMILY, family]
    with matplotlib.rc_context(rc), warnings.catch_warnings():
        yield family


def styled(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a chart-drawing function (build, draw and save) inside ``chart_style``."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with chart_style():
            return fn(*args, **kwargs)

    return wrapper


__all__ = ["CJK_FAMILIES", "CJK_FILES", "chart_style", "cjk_family", "styled"]
