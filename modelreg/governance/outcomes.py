"""Late outcomes (issue 12 item 2): decisions recorded by monitoring runs, outcomes added later keyed by the
decision id, realised performance per vintage and against the earlier label-free estimate.

* A monitoring run on a scoring log with the model card's ``decision_id_column`` and ``decision_time_column``
  records the log's decisions (id, time, score, the evaluation that scored them; ``decisions_of`` checks the
  columns at the boundary). When the log has no target but outcomes are recorded for its ids, the run joins
  them and stores the vintage report and the comparison with the earlier estimates in the evaluation's data
  (``realised_section``).
* ``add_outcomes`` (``modelreg outcomes add``) records a file of outcomes in one unit of work with its
  ``outcomes.added`` event. Duplicate ids in the file and an id already recorded with another outcome are
  errors (exit 2, nothing recorded). Unknown ids (never scored for this version) and outcomes observed before
  their decision are refused row by row: not recorded, counted with sample ids in the result, the batch row
  and the audit event (``strict=True``: refuse the whole file instead). An id already recorded with the same
  outcome is counted as already recorded, so re-sending a file is harmless.
* ``outcomes_report`` (``modelreg outcomes report``): the same vintage report over every recorded decision of
  the version, read-only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from modelreg import clock
from modelreg.errors import BadInput, NotFound
from modelreg.registry import Registry

MSG_DUPLICATES = (
    "{what} has {count} decision id(s) that occur more than once in column {column!r} (e.g. {sample!r}): "
    "each decision id must appear once; nothing was recorded"
)
MSG_CONFLICT = (
    "{count} outcome(s) contradict outcomes already recorded for {name} {version} (e.g. {sample!r}: recorded "
    "{recorded}, the file says {file}); recorded outcomes are never changed: nothing was recorded"
)
MSG_STRICT = (
    "--strict: {unknown} unknown decision id(s) (e.g. {unknown_sample}) and {before} outcome(s) observed before "
    "their decision (e.g. {before_sample}); nothing was recorded"
)
MSG_NO_COLUMN = "name the {what} with {option} or set the model card field {field}"
MSG_FUTURE = "{count} outcome(s) are observed after now ({now}) (e.g. {sample!r}): nothing was recorded"

OUTCOME_EVENT = "outcomes.added"
SAMPLES = 3


def _utc_times(series: Any, what: str, column: str) -> Any:
    """A column of times as UTC timestamps (naive times are UTC); unparseable or missing cells are bad input."""
    import pandas as pd

    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        parsed = series
    else:
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
    if getattr(parsed.dt, "tz", None) is None:
        parsed = parsed.dt.tz_localize("UTC")
    else:
        parsed = parsed.dt.tz_convert("UTC")
    bad = parsed.isna()
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise BadInput(
            f"{what}: column {column!r} has {int(bad.sum())} missing or unreadable time(s) (first at row {row + 1}, "
            f"{series.iloc[row]!r}); times must be ISO 8601 (naive times are read as UTC)"
        )
    return parsed


def _ids(series: Any, what: str, column: str) -> Any:
    bad = series.isna()
    if bad.any():
        raise BadInput(
            f"{what}: column {column!r} has {int(bad.sum())} missing decision id(s) (first at row "
            f"{int(bad.to_numpy().nonzero()[0][0]) + 1})"
        )
    ids = series.astype(str)
    too_long = ids.str.len() > 200
    if too_long.any():
        raise BadInput(
            f"{what}: decision ids must be at most 200 characters (e.g. {ids[too_long].iloc[0][:40]!r}…)"
        )
    return ids


def check_unique(ids: Any, what: str, column: str) -> None:
    dup = ids.duplicated(keep=False)
    if dup.any():
        repeated = ids[dup]
        raise BadInput(
            MSG_DUPLICATES.format(
                what=what, count=int(repeated.nunique()), column=column, sample=str(repeated.min())
            )
        )


def decisions_of(current: Any, id_column: str, time_column: str, score_column: str | None) -> Any:
    """The scoring log's decisions as (decision_id, decided_at UTC, score), checked: both columns present,
    ids present and unique, times readable."""
    import pandas as pd

    for col, field in ((id_column, "decision_id_column"), (time_column, "decision_time_column")):
        if col not in current.columns:
            raise BadInput(
                f"--data has no column {col!r}, the model card's {field} (it has "
                f"{', '.join(map(str, current.columns[:15]))}{'…' if len(current.columns) > 15 else ''})"
            )
    ids = _ids(current[id_column], "--data", id_column)
    check_unique(ids, "--data", id_column)
    frame = pd.DataFrame(
        {
            "decision_id": ids.reset_index(drop=True),
            "decided_at": _utc_times(current[time_column], "--data", time_column).reset_index(drop=True),
        }
    )
    if score_column and score_column in current.columns:
        frame["score"] = pd.to_numeric(current[score_column], errors="coerce").to_numpy(dtype=float)
    else:
        frame["score"] = float("nan")
    return frame


def decisions_digest(frame: Any) -> str:
    """SHA-256 over the decisions in id order, one ``id,decided_at,score`` line each (recomputable by anyone
    with the scoring log)."""
    import pandas as pd

    ordered = frame.sort_values("decision_id", kind="stable")
    times = pd.DatetimeIndex(ordered["decided_at"]).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    scores = ordered["score"].map(lambda s: "" if s != s else repr(float(s)))
    lines = ordered["decision_id"].astype(str) + "," + pd.Series(times, index=ordered.index) + "," + scores
    h = hashlib.sha256()
    h.update("\n".join(lines.tolist()).encode())
    return h.hexdigest()


def realised_section(
    reg: Registry, session: Any, version_id: int, decisions: Any, *, min_class_count: int
) -> dict | None:
    """The vintage report and the comparison with earlier estimates on this run's decisions, from the outcomes
    recorded for them; None when none is recorded yet."""
    from modelreg.store import outcomes as store

    recorded = store.joined(session, version_id)
    if recorded["outcome"].notna().sum() == 0:
        return None
    frame = decisions.merge(
        recorded[["decision_id", "score", "evaluation_id", "outcome"]].rename(
            columns={"score": "recorded_score"}
        ),
        on="decision_id",
        how="left",
    )
    if frame["outcome"].notna().sum() == 0:
        return None
    # The decision's own score (recorded when it was first scored) is what the outcome judges.
    frame["score"] = frame["recorded_score"].where(frame["recorded_score"].notna(), frame["score"])
    return _report(reg, session, frame, min_class_count)


def _report(reg: Registry, session: Any, frame: Any, min_class_count: int) -> dict:
    from modelreg.governance import records
    from monitors.vintage import ESTIMATE_KIND, compare_with_estimates, estimate_of, vintage_report

    try:
        report = vintage_report(frame, min_class_count=min_class_count)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    estimates = {}
    for eid in sorted({int(e) for e in frame["evaluation_id"].dropna().unique()}):
        estimates[eid] = estimate_of(records.monitor_results(session, eid).get(ESTIMATE_KIND))
    report["comparison"] = compare_with_estimates(frame, estimates, min_class_count=min_class_count)
    report["estimate_kind"] = ESTIMATE_KIND
    return report


# -- outcomes add ---------------------------------------------------------------------------------------


def _positive(series: Any, column: str, positive_label: Any) -> Any:
    """The outcome column as 0/1 (1 = the positive class)."""
    from modelreg.governance.runner import resolve_positive_label

    frame = series.to_frame(column)
    try:
        label, _note = resolve_positive_label(frame, column, positive_label)
    except BadInput as exc:
        raise BadInput(exc.message.replace("--target", "--outcome-column")) from None
    return (series == label).astype(int), label


def _read(data: Any, encoding: str | None) -> tuple[Any, str, str]:
    """(frame, source name, digest): a file's SHA-256, or for a DataFrame the SHA-256 of its CSV text."""
    import pandas as pd

    from modelreg.datasets import read_table

    if isinstance(data, pd.DataFrame):
        # A frame has no file bytes: SHA-256 of pandas' row hashes (columns and values, in order).
        hashed = pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes()
        names = "\x1f".join(map(str, data.columns)).encode()
        return data, "<DataFrame>", hashlib.sha256(names + b"\x1e" + hashed).hexdigest()
    path = Path(data)
    frame = read_table(path, encoding=encoding, what="outcomes file")
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return frame, path.name, h.hexdigest()


def _columns(card: dict, id_column, outcome_column, time_column) -> tuple[str, str, str]:
    id_column = id_column or card.get("decision_id_column")
    outcome_column = outcome_column or card.get("outcome_column")
    time_column = time_column or card.get("outcome_time_column")
    for value, what, option, field in (
        (id_column, "decision id column", "--id-column", "decision_id_column"),
        (outcome_column, "outcome column", "--outcome-column", "outcome_column"),
        (time_column, "observation time column", "--time-column", "outcome_time_column"),
    ):
        if not isinstance(value, str) or not value:
            raise BadInput(MSG_NO_COLUMN.format(what=what, option=option, field=field))
    return id_column, outcome_column, time_column  # type: ignore[return-value]


def add_outcomes(
    reg: Registry,
    name: str,
    version: str,
    data: Any,
    *,
    id_column: str | None = None,
    outcome_column: str | None = None,
    time_column: str | None = None,
    positive_label: Any = None,
    encoding: str | None = None,
    strict: bool = False,
) -> dict:
    """Record a batch of outcomes for ``name`` ``version``: all or nothing, with its ``outcomes.added`` event."""
    if getattr(reg, "remote", False):
        return reg.add_outcomes(name, version, data, id_column=id_column, outcome_column=outcome_column,
                                time_column=time_column, positive_label=positive_label, encoding=encoding,
                                strict=strict)  # fmt: skip
    import pandas as pd

    from modelreg.store import outcomes as store

    version = str(version)
    with reg.reading("outcomes.add", model=name, version=version) as rd:  # deny before reading the file
        assert rd.target is not None
        card = dict(rd.target.version.model_card or {})
    id_column, outcome_column, time_column = _columns(card, id_column, outcome_column, time_column)
    raw, source, digest = _read(data, encoding)
    if raw.empty:
        raise BadInput("the outcomes file has no rows")
    for col in (id_column, outcome_column, time_column):
        if col not in raw.columns:
            raise BadInput(
                f"the outcomes file has no column {col!r} (it has {', '.join(map(str, raw.columns[:15]))})"
            )
    ids = _ids(raw[id_column], "the outcomes file", id_column)
    check_unique(ids, "the outcomes file", id_column)
    missing = raw[outcome_column].isna()
    if missing.any():
        raise BadInput(
            f"the outcomes file: column {outcome_column!r} has {int(missing.sum())} missing outcome(s) (e.g. id "
            f"{ids[missing].iloc[0]!r}); leave an outcome out of the file until it is observed"
        )
    outcome, label = _positive(raw[outcome_column], outcome_column, positive_label)
    observed = _utc_times(raw[time_column], "the outcomes file", time_column)
    now = clock.now()
    future = observed > pd.Timestamp(now)
    if future.any():
        raise BadInput(
            MSG_FUTURE.format(
                count=int(future.sum()), now=clock.isoformat(now), sample=str(ids[future].iloc[0])
            )
        )
    frame = pd.DataFrame(
        {
            "decision_id": ids.reset_index(drop=True),
            "outcome": outcome.reset_index(drop=True),
            "observed_at": observed.reset_index(drop=True),
        }
    )
    with reg.change("outcomes.add", model=name, version=version) as tx:
        assert tx.target is not None
        session = tx.session
        store.stage_outcomes(session, frame)
        classes = store.classify_outcomes(session, tx.target.id, SAMPLES)
        conflict = classes["conflicting"]
        if conflict["count"]:
            first = conflict["detail"][0]
            raise BadInput(
                MSG_CONFLICT.format(
                    count=conflict["count"],
                    name=name,
                    version=version,
                    sample=first["decision_id"],
                    recorded=first["recorded"],
                    file=first["file"],
                )
            )
        unknown, before = classes["unknown"], classes["before_decision"]
        if strict and (unknown["count"] or before["count"]):
            raise BadInput(
                MSG_STRICT.format(
                    unknown=unknown["count"],
                    unknown_sample=unknown["sample"][:1] or "-",
                    before=before["count"],
                    before_sample=before["sample"][:1] or "-",
                )
            )
        counts = {
            "rows": len(frame),
            "matched": classes["new"]["count"],
            "already_recorded": classes["already_recorded"]["count"],
            "unknown": unknown["count"],
            "before_decision": before["count"],
            "duplicates": 0,
        }
        batch_id = store.add_batch(
            session,
            version_id=tx.target.id,
            source=source,
            digest=digest,
            counts={
                **counts,
                "unknown_sample": unknown["sample"],
                "before_decision_sample": before["sample"],
            },
            added_by=reg.actor,
            added_at=now,
        )
        inserted = store.insert_outcomes(session, tx.target.id, batch_id)
        if inserted != counts["matched"]:  # the classification and the insert must agree, or nothing
            raise RuntimeError(f"outcomes: {inserted} rows inserted, {counts['matched']} classified new")
        payload = {
            "batch_id": batch_id,
            "source": source,
            "digest": digest,
            **counts,
            "unknown_sample": unknown["sample"],
            "before_decision_sample": before["sample"],
            "columns": {"id": id_column, "outcome": outcome_column, "observed_at": time_column},
            "positive_label": label if isinstance(label, (int, float, str)) else str(label),
            "strict": strict,
        }
        tx.event(OUTCOME_EVENT, payload=payload)
        totals = store.count_rows(session, tx.target.id)
    return {
        "model": name,
        "version": version,
        **payload,
        "refused": counts["unknown"] + counts["before_decision"],
        "recorded_by": reg.actor,
        "totals": {"decisions": totals["decisions"], "outcomes": totals["outcomes"]},
    }


def outcomes_report(reg: Registry, name: str, version: str, *, min_class_count: int | None = None) -> dict:
    """Realised performance per vintage over every recorded decision of the version, and each earlier
    monitoring run's estimate against the realised AUC on its decisions. Read-only."""
    if getattr(reg, "remote", False):
        return reg.outcomes_report(name, version, min_class_count=min_class_count)
    from modelreg.store import outcomes as store
    from monitors.vintage import MIN_CLASS_COUNT

    k = MIN_CLASS_COUNT if min_class_count is None else int(min_class_count)
    version = str(version)
    with reg.reading("outcomes.report", model=name, version=version) as rd:
        assert rd.target is not None
        frame = store.joined(rd.session, rd.target.id)
        if frame.empty:
            raise NotFound(
                f"{name} {version} has no recorded decisions: a monitoring run on a scoring log with the model "
                "card's decision_id_column and decision_time_column records them"
            )
        report = _report(reg, rd.session, frame, k)
        report["batches"] = store.batches(rd.session, rd.target.id)
    return {"model": name, "version": version, **report}
