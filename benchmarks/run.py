"""The benchmark suite: run every ``benchmarks/bench_*.py`` and print one table of ratios.

    .venv/bin/python benchmarks/run.py              # full sizes; writes benchmarks/RESULTS.md
    .venv/bin/python benchmarks/run.py --smoke      # small sizes, about two minutes; writes nothing unless --results
    .venv/bin/python benchmarks/run.py --only merkle --only scale_registry

Every script runs in its own subprocess (one at a time: the machine's cores belong to the benchmark that is
running), with ``--smoke`` when the script has it and ``--json`` when the script has it. Each ratio printed is
one the script measured in that same run against its own baseline (a bare ``hashlib`` loop, a minimal numpy
count, ``python -c pass``, sklearn, fairlearn, LightGBM, a single client, a tiny registry ...); the suite adds
no timings of its own. Ratios are read from the script's JSON where it gives one (keys naming a ratio, or a
``ratios`` mapping; for ``bench_registry`` the ratios are computed from the JSON's paired timings) and
otherwise from the lines it prints that state a ratio (``… 1.23x …``). A script that prints no ratio is shown
with its output and fails the suite, as does a script that exits non-zero or runs out of time.

The suite is not part of ``pytest`` (CI time); ``tests/test_benchmarks_smoke.py`` runs ``--smoke``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "RESULTS.md"

# Scripts without a --smoke flag: the arguments that make them small. Scripts not listed and without --smoke
# run at their default (full) size in smoke mode too.
SMOKE_ARGS: dict[str, list[str]] = {"bench_merkle": ["-n", "20000", "--repeat", "1"]}
SMOKE_TIMEOUT_S = 150.0
FULL_TIMEOUT_S = 4 * 3600.0

RATIO_IN_TEXT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?[x×](?![\w])")


@dataclass
class Ratio:
    label: str
    value: float
    source: str  # "json" or the line it was read from


@dataclass
class Outcome:
    name: str
    argv: list[str]
    returncode: int | None
    seconds: float
    stdout: str
    stderr: str
    ratios: list[Ratio] = field(default_factory=list)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and bool(self.ratios)


def discover(only: list[str] | None = None) -> list[Path]:
    scripts = sorted(HERE.glob("bench_*.py"))
    if only:
        wanted = {o.removeprefix("bench_").removesuffix(".py") for o in only}
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in wanted]
        missing = wanted - {s.stem.removeprefix("bench_") for s in scripts}
        if missing:
            raise SystemExit(f"no benchmark script named {', '.join(sorted(missing))} in {HERE}")
    return scripts


def flags_of(script: Path) -> set[str]:
    """Which of our two conventional flags the script declares (read from its source: no import, no run)."""
    source = script.read_text(encoding="utf-8")
    return {f for f in ("--smoke", "--json") if re.search(rf"""["']{f}["']""", source)}


def command(script: Path, smoke: bool) -> list[str]:
    flags = flags_of(script)
    argv = [sys.executable, str(script)]
    if smoke:
        argv += ["--smoke"] if "--smoke" in flags else SMOKE_ARGS.get(script.stem, [])
    if "--json" in flags:
        argv.append("--json")
    return argv


def last_json_object(text: str) -> dict | None:
    """The last top-level JSON object in ``text`` (scripts print their table first, then the JSON)."""
    starts = [m.start() for m in re.finditer(r"^\{", text, flags=re.M)]
    for start in reversed(starts):
        try:
            obj, _ = json.JSONDecoder().raw_decode(text[start:])
        except ValueError:
            continue
        if isinstance(obj, dict):
            return obj
    return None


def _number(v: object) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def ratios_from_json(name: str, obj: dict) -> list[Ratio]:
    out: list[Ratio] = []
    if name == "bench_registry":
        s = obj.get("startup") or {}
        base = _number(s.get("python -c pass"))
        for key in ("modelreg --help", "modelreg list", "modelreg list --json"):
            if base and _number(s.get(key)) is not None:
                out.append(Ratio(f"{key} wall time vs python -c pass", s[key] / base, "json"))
        v = obj.get("verify") or {}
        if _number(v.get("verify_s")) and _number(v.get("bare_sha256_s")):
            out.append(
                Ratio(
                    f"audit verify of {v.get('events', 0):,} events vs bare sha256 loop",
                    v["verify_s"] / v["bare_sha256_s"],
                    "json",
                )
            )
        for label in ("sqlite", "postgresql"):
            o = obj.get(f"ops_{label}") or {}
            if "register" in o and "deploy" in o and o["register"].get("p50_ms"):
                out.append(
                    Ratio(
                        f"{label} deploy p50 vs register p50",
                        o["deploy"]["p50_ms"] / o["register"]["p50_ms"],
                        "json",
                    )
                )
        return out
    if isinstance(obj.get("ratios"), dict):
        out += [Ratio(str(k), float(v), "json") for k, v in obj["ratios"].items() if _number(v) is not None]

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict) and k != "ratios":
                walk(v, f"{prefix}{k}.")
            elif _number(v) is not None and re.search(r"(^|[_ ])(ratio|vs)([_ ]|$)", k.lower()):
                out.append(Ratio(f"{prefix}{k}", float(v), "json"))

    walk(obj, "")
    return out


TABLE_RATIO_HEADER = re.compile(r"[x×]\s?([A-Za-z_][\w.-]*)")


def ratios_from_text(text: str) -> list[Ratio]:
    out = []
    columns: list[str] = []  # ratio columns of the table being read ("× numpy", "× sql" headers)
    context = (
        ""  # the heading above the table ("1,000,000 rows × 20 features (...):"): tells repeated tables apart
    )
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("{", '"')):
            columns = []
            continue
        headers = [
            h
            for h in TABLE_RATIO_HEADER.findall(stripped)
            if re.search(rf"(^|\s)[x×]\s?{re.escape(h)}(\s|$)", stripped)
        ]
        if headers and not re.search(r"\d", stripped):
            columns = headers
            continue
        if stripped.endswith(":") and not columns:
            context = stripped.split("(")[0].strip(" :")
            continue
        if columns:
            cells = stripped.split()
            numbers = cells[-len(columns) :]
            try:
                values = [float(c) for c in numbers]
            except ValueError:
                values = []
            if values and len(cells) > len(columns):
                for col, v in zip(columns, values, strict=True):
                    if v != 1.0:  # the column's own baseline row
                        out.append(
                            Ratio(f"{context + ': ' if context else ''}{cells[0]} vs {col}", v, "text table")
                        )
                continue
        # the first number-with-x on the line is the measured ratio; later ones are usually the goal
        m = re.search(r"ratio\s+(\d+(?:\.\d+)?)\s?[x×]", stripped) or RATIO_IN_TEXT.search(stripped)
        if m and "goal" not in stripped[: m.start()].lower().split("(")[-1]:
            out.append(Ratio(re.sub(r"\s+", " ", stripped)[:110], float(m.group(1)), "text"))
    return out


def run_one(script: Path, smoke: bool, timeout: float) -> Outcome:
    argv = command(script, smoke)
    env = {
        **os.environ,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        code, out, err, note = done.returncode, done.stdout, done.stderr, ""
    except subprocess.TimeoutExpired as exc:
        code = None
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        note = f"timed out after {timeout:.0f} s"
    seconds = time.perf_counter() - started
    outcome = Outcome(script.stem, argv, code, seconds, out, err, note=note)
    obj = last_json_object(out) if "--json" in argv else None
    text_part = out[: out.rfind("\n{")] if obj is not None and "\n{" in out else out
    outcome.ratios = (ratios_from_json(script.stem, obj) if obj else []) or ratios_from_text(text_part)
    if obj is not None and not ratios_from_json(script.stem, obj):
        outcome.note = (
            outcome.note + "; " if outcome.note else ""
        ) + "ratios read from the printed lines (the JSON names none)"
    return outcome


# -- machine --------------------------------------------------------------------------------------------------
def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    mem = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "load average (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load),
    }


# -- output ---------------------------------------------------------------------------------------------------
def table(outcomes: list[Outcome]) -> str:
    width = max([len(r.label) for o in outcomes for r in o.ratios] + [40])
    lines = [
        f"{'benchmark':<30} {'ratio':>10}  measurement (against its baseline, same run)",
        "-" * (44 + width),
    ]
    for o in outcomes:
        status = "ok" if o.ok else ("NO RATIO" if o.returncode == 0 else (o.note or f"exit {o.returncode}"))
        if not o.ratios:
            lines.append(f"{o.name:<30} {'-':>10}  {status} ({o.seconds:.0f} s)")
        for i, r in enumerate(o.ratios):
            lines.append(f"{o.name if i == 0 else '':<30} {r.value:>9.2f}x  {r.label}")
        if o.ratios:
            lines.append(f"{'':<30} {'':>10}  [{status}, {o.seconds:.0f} s]")
    return "\n".join(lines)


def results_markdown(
    outcomes: list[Outcome], info_before: dict, info_after: dict, smoke: bool, started: datetime
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Produced by `benchmarks/run.py{' --smoke' if smoke else ''}` on {started:%Y-%m-%d %H:%M} UTC. Every ratio below was measured "
        "by the benchmark script in this run against its own baseline; re-run the command to reproduce on your machine.",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
    ]
    for k, v in info_before.items():
        lines.append(
            f"| {k} | {v}{' (after the run: ' + info_after[k] + ')' if k.startswith('load') else ''} |"
        )
    lines += [
        "",
        "## Ratios",
        "",
        "| benchmark | ratio | measurement | status |",
        "| --- | ---: | --- | --- |",
    ]
    for o in outcomes:
        status = (
            "ok" if o.ok else (o.note or f"exit {o.returncode}" if o.returncode != 0 else "no ratio printed")
        )
        if not o.ratios:
            lines.append(f"| {o.name} | – | – | {status} |")
        for r in o.ratios:
            lines.append(
                f"| {o.name} | {r.value:.2f}× | {r.label.replace('|', '/')} | {status} ({o.seconds:.0f} s) |"
            )
    lines += ["", "## Full output of each script", ""]
    for o in outcomes:
        lines += [
            f"### {o.name}",
            "",
            f"`{' '.join(Path(a).name if a == sys.executable else a for a in o.argv[1:])}` — exit {o.returncode}, {o.seconds:.1f} s",
            "",
            "```",
        ]
        body = o.stdout
        if "--json" in o.argv and "\n{" in body:
            body = body[: body.rfind("\n{")] + "\n(JSON figures omitted here)"
        lines += [body.rstrip()[-12000:], "```", ""]
        if o.returncode not in (0,) and o.stderr.strip():
            lines += [
                "stderr (last lines):",
                "",
                "```",
                "\n".join(o.stderr.strip().splitlines()[-15:]),
                "```",
                "",
            ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--smoke", action="store_true", help="each script at its small size")
    ap.add_argument(
        "--only",
        action="append",
        help="run only this benchmark (name with or without bench_ / .py); repeatable",
    )
    ap.add_argument(
        "--results",
        type=Path,
        help=f"write the Markdown report here (default: {RESULTS.relative_to(REPO)} for a full run, none for --smoke)",
    )
    ap.add_argument(
        "--timeout",
        type=float,
        help=f"seconds per script (default {SMOKE_TIMEOUT_S:.0f} with --smoke, {FULL_TIMEOUT_S:.0f} otherwise)",
    )
    ap.add_argument("-v", "--verbose", action="store_true", help="print each script's output as it finishes")
    args = ap.parse_args(argv)
    scripts = discover(args.only)
    if not scripts:
        print(f"no bench_*.py scripts in {HERE}", file=sys.stderr)
        return 2
    timeout = args.timeout or (SMOKE_TIMEOUT_S if args.smoke else FULL_TIMEOUT_S)
    started = datetime.now(UTC)
    before = machine()
    print(
        f"# modelreg benchmark suite{' (smoke)' if args.smoke else ''}: {len(scripts)} scripts; "
        f"{before['cpu']}, {before['cores']} cores, {before['memory']}, {before['python']}, load {before['load average (1/5/15 min)']}",
        flush=True,
    )
    outcomes = []
    for script in scripts:
        print(f"  running {script.name} ...", end=" ", flush=True)
        o = run_one(script, args.smoke, timeout)
        outcomes.append(o)
        print(
            f"exit {o.returncode}, {o.seconds:.1f} s, {len(o.ratios)} ratios{' (' + o.note + ')' if o.note else ''}",
            flush=True,
        )
        if args.verbose or not o.ok:
            shown = (
                o.stdout[: o.stdout.rfind("\n{")] if "--json" in o.argv and "\n{" in o.stdout else o.stdout
            )
            print("\n".join("    | " + line for line in shown.rstrip().splitlines()[-60:]))
            if o.returncode != 0 and o.stderr.strip():
                print("\n".join("    ! " + line for line in o.stderr.rstrip().splitlines()[-15:]))
    after = machine()
    print()
    print(table(outcomes))
    target = args.results or (None if args.smoke else RESULTS)
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(results_markdown(outcomes, before, after, args.smoke, started), encoding="utf-8")
        print(f"\nwrote {target}")
    failed = [o.name for o in outcomes if not o.ok]
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
