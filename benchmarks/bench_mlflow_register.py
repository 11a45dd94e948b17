"""The MLflow-native registration (``modelreg.integrations.mlflow.log_and_register``) against plain MLflow, as
a ratio measured in the same run.

Baseline: what a data scientist types without modelreg, ``mlflow.sklearn.log_model(model,
registered_model_name=...)`` in a run. Contender: ``log_and_register``, which does the same MLflow calls and then
registers the version with modelreg (preflight, MLflow version info with the artifact digest, the registry's
unit of work, the audit event, the stage tag). Both write to one local SQLite MLflow store and run interleaved
(benchmarks/_timing.py); the ratio is contender / baseline.

    .venv/bin/python benchmarks/bench_mlflow_register.py            # 7 rounds
    .venv/bin/python benchmarks/bench_mlflow_register.py --smoke --json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _timing import interleaved


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--smoke", action="store_true", help="3 rounds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    repeat = 3 if args.smoke else args.repeat

    import mlflow
    import mlflow.sklearn
    import numpy as np
    import sklearn
    from sklearn.linear_model import LogisticRegression

    from modelreg import settings as settings_mod
    from modelreg.client import Client, open_registry

    root = Path(tempfile.mkdtemp(prefix="bench-mlflow-register-"))
    os.chdir(root)  # anything MLflow writes by default lands in the scratch folder
    repo = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELREG_", "MLFLOW_"))}
    env.update(
        MODELREG_CONFIG=str(repo / "mlflow.env"),
        MODELREG_HOME=str(root / "home"),
        MODELREG_DATABASE_URL=f"sqlite:///{root / 'registry.db'}",
        MODELREG_AUDIT_KEY=str(root / "home" / "keys" / "audit.key"),
        MODELREG_EVIDENCE_KEY=str(root / "home" / "keys" / "evidence.key"),
        MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}",
        MLFLOW_REGISTRY_URI=f"sqlite:///{root / 'mlflow.db'}",
        MLFLOW_ARTIFACT_ROOT=str(root / "mlartifacts"),
        MLFLOW_DISABLE_TELEMETRY="true",
    )
    settings = settings_mod.load(environ=env)
    admin = Client(open_registry(settings, actor="admin"))
    admin.init()
    admin.add_user("admin", ["admin"])
    admin.add_user("dev", ["developer"])
    dev = Client(open_registry(settings, actor="dev"))

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X @ np.array([1.0, -0.5, 0.3, 0.0]) + rng.normal(size=300) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    pip = [f"scikit-learn=={sklearn.__version__}", f"numpy=={np.__version__}"]

    with settings.mlflow_scope():
        mlflow.set_experiment("bench")

        def plain() -> str:
            with mlflow.start_run():
                info = mlflow.sklearn.log_model(
                    model, name="model", registered_model_name="plain", pip_requirements=pip
                )
            return str(info.registered_model_version)

        def governed() -> str:
            mv = dev.log_and_register(
                model, name="governed", owner="dev", risk_tier="medium", purpose="PD", pip_requirements=pip
            )
            return mv.version

        plain()  # warm-up: MLflow's first call creates its tables; not a registration cost
        governed()
        (t_plain, _), (t_gov, last) = interleaved([plain, governed], repeat)
    ratio = t_gov / t_plain
    print("| benchmark | plain MLflow (s) | log_and_register (s) | ratio |")
    print("|---|---|---|---|")
    print(f"| log_and_register vs plain log_model+register | {t_plain:.3f} | {t_gov:.3f} | {ratio:.2f}x |")
    if args.json:
        print(
            json.dumps(
                {
                    "rounds": repeat,
                    "plain_s": t_plain,
                    "log_and_register_s": t_gov,
                    "versions_registered": int(last),
                    "ratios": {"log_and_register vs plain MLflow log_model+register_model": ratio},
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
