"""Rows of scored decisions and their outcomes: bulk inserts and the joins behind ``outcomes add`` and the
realised-performance report. Rows never leave this module (frames and counts do).

A scoring log has up to millions of rows, so nothing here builds ORM objects: decisions and outcomes go in
through the driver's bulk path inside the unit of work's transaction (``COPY`` into a temporary table on
PostgreSQL, ``executemany`` on SQLite), and the checks of an outcome batch (unknown id, observed before its
decision, already recorded with another value) are set operations in SQL against that temporary table.
Times are handed in as pandas UTC timestamps; on SQLite they are written in SQLAlchemy's own DATETIME text
format, so ORM reads and these string comparisons agree.
"""

from __future__ import annotations

import io
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from modelreg.store.tables import OutcomeBatchRow

_TMP_OUTCOMES = "modelreg_tmp_outcomes"
_TMP_DECISIONS = "modelreg_tmp_decisions"
_SQLITE_FORMAT = "sqlite"  # SQLAlchemy's SQLite DATETIME storage format: 2025-01-31 12:00:00.000000
_PG_FORMAT = "pg"  # ISO 8601 with a Z (UTC), whatever the session's time zone


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _raw(session: Session) -> Any:
    """The DBAPI connection of the session's transaction (begun if it was not)."""
    return session.connection().connection.driver_connection


def _times(values: Any, fmt: str) -> list[str]:
    """UTC timestamps as text, vectorised (pandas' strftime costs seconds a million rows)."""
    import numpy as np
    import pandas as pd

    utc = pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")
    if fmt == _PG_FORMAT:
        return np.datetime_as_string(utc, unit="us", timezone="UTC").tolist()
    text_ = np.datetime_as_string(utc, unit="us")  # 2025-01-31T12:00:00.000000, fixed width
    chars = text_.view(np.uint32).reshape(len(text_), -1)
    chars[:, 10] = ord(" ")
    return text_.tolist()


def _copy_rows(session: Session, table: str, columns: tuple[str, ...], rows: Any) -> None:
    """PostgreSQL: the rows through ``COPY … FROM STDIN`` (tab-separated text)."""
    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else _copy_text(v) for v in row))
        buf.write("\n")
    raw = _raw(session)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(buf.getvalue())


def _copy_text(value: Any) -> str:
    text_ = str(value)
    if "\\" in text_ or "\t" in text_ or "\n" in text_ or "\r" in text_:
        text_ = text_.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text_


def record_decisions(session: Session, version_id: int, evaluation_id: int, frame: Any) -> tuple[int, int]:
    """Insert the scoring log's decisions (columns ``decision_id``, ``decided_at`` as UTC timestamps, ``score``)
    for one evaluation; ids already recorded for the version keep their first record. Returns (inserted,
    already recorded)."""
    n = len(frame)
    if n == 0:
        return 0, 0
    ids = frame["decision_id"].astype(str).tolist()
    scores = (
        [None if s != s else float(s) for s in frame["score"].tolist()] if "score" in frame else [None] * n
    )
    dialect = _dialect(session)
    before = _count(session, "decisions", version_id)
    if dialect == "postgresql":
        times = _times(frame["decided_at"], _PG_FORMAT)
        rows = list(zip(ids, times, scores, strict=True))
        # A new log (the usual case) is copied straight into the table; if any id is already recorded the
        # COPY fails on the unique key, is rolled back to the savepoint, and the rows go through a temporary
        # table and INSERT … ON CONFLICT DO NOTHING instead.
        from sqlalchemy.exc import IntegrityError

        try:
            with session.begin_nested():
                _copy_rows(
                    session,
                    "decisions",
                    ("version_id", "decision_id", "decided_at", "score", "evaluation_id"),
                    ((version_id, i, t, s, evaluation_id) for i, t, s in rows),
                )
            return n, 0
        except IntegrityError:
            pass
        except Exception as exc:  # psycopg's UniqueViolation raised from the raw cursor, not wrapped
            if type(exc).__name__ != "UniqueViolation":
                raise
        session.execute(
            text(
                f"CREATE TEMP TABLE {_TMP_DECISIONS} (decision_id text, decided_at timestamptz, score double precision) "
                "ON COMMIT DROP"
            )
        )
        _copy_rows(session, _TMP_DECISIONS, ("decision_id", "decided_at", "score"), rows)
        session.execute(
            text(
                "INSERT INTO decisions (version_id, decision_id, decided_at, score, evaluation_id) "
                f"SELECT :v, decision_id, decided_at, score, :e FROM {_TMP_DECISIONS} "
                "ON CONFLICT (version_id, decision_id) DO NOTHING"
            ),
            {"v": version_id, "e": evaluation_id},
        )
    else:
        times = _times(frame["decided_at"], _SQLITE_FORMAT)
        raw = _raw(session)
        raw.executemany(
            "INSERT OR IGNORE INTO decisions (version_id, decision_id, decided_at, score, evaluation_id) "
            "VALUES (?, ?, ?, ?, ?)",
            ((version_id, i, t, s, evaluation_id) for i, t, s in zip(ids, times, scores, strict=True)),
        )
    inserted = _count(session, "decisions", version_id) - before
    return inserted, n - inserted


def _count(session: Session, table: str, version_id: int) -> int:
    return int(
        session.execute(
            text(f"SELECT count(*) FROM {table} WHERE version_id = :v"), {"v": version_id}
        ).scalar_one()
    )


def count_rows(session: Session, version_id: int) -> dict[str, int]:
    return {t: _count(session, t, version_id) for t in ("decisions", "outcomes", "outcome_batches")}


def stage_outcomes(session: Session, frame: Any) -> None:
    """Load a batch (``decision_id``, ``outcome`` 0/1, ``observed_at`` UTC) into this transaction's temporary
    table, for ``classify_outcomes`` and ``insert_outcomes``."""
    ids = frame["decision_id"].astype(str).tolist()
    outcomes = frame["outcome"].astype(int).tolist()
    if _dialect(session) == "postgresql":
        session.execute(
            text(
                f"CREATE TEMP TABLE {_TMP_OUTCOMES} (decision_id text, outcome integer, "
                "observed_at timestamptz) ON COMMIT DROP"
            )
        )
        times = _times(frame["observed_at"], _PG_FORMAT)
        _copy_rows(
            session,
            _TMP_OUTCOMES,
            ("decision_id", "outcome", "observed_at"),
            zip(ids, outcomes, times, strict=True),
        )
        session.execute(text(f"ANALYZE {_TMP_OUTCOMES}"))
    else:
        session.execute(text(f"DROP TABLE IF EXISTS temp.{_TMP_OUTCOMES}"))
        session.execute(
            text(f"CREATE TEMP TABLE {_TMP_OUTCOMES} (decision_id TEXT, outcome INTEGER, observed_at TEXT)")
        )
        times = _times(frame["observed_at"], _SQLITE_FORMAT)
        _raw(session).executemany(
            f"INSERT INTO temp.{_TMP_OUTCOMES} (decision_id, outcome, observed_at) VALUES (?, ?, ?)",
            zip(ids, outcomes, times, strict=True),
        )


_CLASSIFIED = "modelreg_tmp_classified"
# Each staged row falls in exactly one class, first match wins.
_CLASSES = (
    ("unknown", "d.id IS NULL"),
    ("conflicting", "o.id IS NOT NULL AND o.outcome <> t.outcome"),
    ("already_recorded", "o.id IS NOT NULL"),
    ("before_decision", "t.observed_at < d.decided_at"),
)


def classify_outcomes(session: Session, version_id: int, samples: int = 3) -> dict[str, dict]:
    """Classify every staged row once (one join with decisions and outcomes, into a temporary table) as
    unknown, conflicting, already_recorded, before_decision or new; per class the count and up to
    ``samples`` ids (the smallest, so the output is deterministic)."""
    pg = _dialect(session) == "postgresql"
    case = " ".join(f"WHEN {cond} THEN '{name}'" for name, cond in _CLASSES)
    if not pg:
        session.execute(text(f"DROP TABLE IF EXISTS temp.{_CLASSIFIED}"))
    session.execute(
        text(
            f"CREATE TEMP TABLE {_CLASSIFIED} {'ON COMMIT DROP ' if pg else ''}AS "
            f"SELECT t.decision_id, t.outcome, t.observed_at, o.outcome AS recorded, CASE {case} ELSE 'new' END AS cls "
            f"FROM {_TMP_OUTCOMES} t "
            "LEFT JOIN decisions d ON d.version_id = :v AND d.decision_id = t.decision_id "
            "LEFT JOIN outcomes o ON o.version_id = :v AND o.decision_id = t.decision_id"
        ),
        {"v": version_id},
    )
    out = {name: {"count": 0, "sample": []} for name, _ in (*_CLASSES, ("new", ""))}
    for cls, count in session.execute(text(f"SELECT cls, count(*) FROM {_CLASSIFIED} GROUP BY cls")).all():
        out[cls]["count"] = int(count)
    for name, _ in _CLASSES:
        if not out[name]["count"]:
            continue
        rows = session.execute(
            text(
                f"SELECT decision_id, recorded, outcome FROM {_CLASSIFIED} WHERE cls = :c "
                f"ORDER BY decision_id LIMIT {int(samples)}"
            ),
            {"c": name},
        ).all()
        out[name]["sample"] = [r[0] for r in rows]
        if name == "conflicting":
            out[name]["detail"] = [
                {"decision_id": r[0], "recorded": int(r[1]), "file": int(r[2])} for r in rows
            ]
    return out


def add_batch(
    session: Session, *, version_id: int, source: str, digest: str, counts: dict, added_by: str, added_at
) -> int:
    row = OutcomeBatchRow(
        version_id=version_id,
        source=source,
        digest=digest,
        counts=counts,
        added_by=added_by,
        added_at=added_at,
    )
    session.add(row)
    session.flush()
    return int(row.id)


def insert_outcomes(session: Session, version_id: int, batch_id: int) -> int:
    """Record the classified rows of class ``new``; returns how many."""
    result = session.execute(
        text(
            "INSERT INTO outcomes (version_id, decision_id, outcome, observed_at, batch_id) "
            f"SELECT :v, decision_id, outcome, observed_at, :b FROM {_CLASSIFIED} WHERE cls = 'new'"
        ),
        {"v": version_id, "b": batch_id},
    )
    return int(result.rowcount)


def joined(session: Session, version_id: int, *, with_outcome_only: bool = False) -> Any:
    """The version's decisions joined with their outcomes, as a DataFrame: decision_id, decided_at (UTC),
    score, evaluation_id, outcome (NaN while unknown), observed_at."""
    import numpy as np
    import pandas as pd

    join = "JOIN" if with_outcome_only else "LEFT JOIN"
    pg = _dialect(session) == "postgresql"
    # PostgreSQL hands times over as microseconds since the epoch (no per-row datetime objects).
    when = (lambda c: f"CAST(EXTRACT(EPOCH FROM {c}) * 1000000 AS BIGINT)") if pg else (lambda c: c)
    sql = (
        f"SELECT d.decision_id, {when('d.decided_at')}, d.score, d.evaluation_id, o.outcome, "
        f"{when('o.observed_at')} FROM decisions d {join} outcomes o "
        "ON o.version_id = d.version_id AND o.decision_id = d.decision_id WHERE d.version_id = "
    )
    names = ["decision_id", "decided_at", "score", "evaluation_id", "outcome", "observed_at"]
    if pg:
        # COPY … TO STDOUT as CSV, parsed by pandas: no Python object per value (a million rows).
        buf = io.BytesIO()
        query = sql + str(int(version_id))
        with _raw(session).cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buf.write(block)
        buf.seek(0)
        frame = pd.read_csv(
            buf,
            names=names,
            header=None,
            dtype={
                "decision_id": str,
                "evaluation_id": "Int64",
                "decided_at": "Int64",
                "observed_at": "Int64",
            },
            keep_default_na=False,
            na_values={
                "score": [""],
                "outcome": [""],
                "decided_at": [""],
                "observed_at": [""],
                "evaluation_id": [""],
            },
        )
        for col in ("decided_at", "observed_at"):
            frame[col] = pd.to_datetime(frame[col].astype("Int64"), unit="us", utc=True)
        frame["score"] = frame["score"].astype(float)
        frame["outcome"] = frame["outcome"].astype(float)
        return frame[names]
    # The driver's own cursor: plain tuples, no per-row result processing (a million rows).
    cur = _raw(session).cursor()
    try:
        cur.execute(sql + "?", (version_id,))
        rows = cur.fetchall()
    finally:
        cur.close()
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(names)
    frame = pd.DataFrame({"decision_id": pd.Series(columns[0], dtype=object)})
    for i, col in ((1, "decided_at"), (5, "observed_at")):
        frame[col] = pd.to_datetime(pd.Series(columns[i], dtype=object), utc=True, format="ISO8601")
    frame["score"] = np.array(columns[2], dtype=float)  # None becomes NaN
    frame["evaluation_id"] = pd.array(columns[3], dtype="Int64")
    frame["outcome"] = np.array(columns[4], dtype=float)
    return frame[names]


def batches(session: Session, version_id: int) -> list[dict]:
    from modelreg import clock

    rows = (
        session.query(OutcomeBatchRow)
        .filter(OutcomeBatchRow.version_id == version_id)
        .order_by(OutcomeBatchRow.id)
    )
    return [
        {
            "batch_id": r.id,
            "source": r.source,
            "digest": r.digest,
            "counts": dict(r.counts or {}),
            "added_by": r.added_by,
            "added_at": clock.isoformat(clock.to_utc(r.added_at)),
        }
        for r in rows
    ]
