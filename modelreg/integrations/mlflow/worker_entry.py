"""The isolated worker's entry point: ``python -I -m modelreg.integrations.mlflow.worker_entry MODEL SCRATCH HIDE``.

Started by ``model_worker.WorkerModel.start`` inside ``unshare --net --mount`` when the platform allows it.
Before the model is touched: the registry's home and key folders are covered by empty tmpfs mounts, every
mount is made read-only except the scratch folder, and every capability is dropped (so the model's code
cannot undo any of it). Then the model is loaded with MLflow and serves predict/predict_proba over the pipe.
This module imports nothing from the registry.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import subprocess
import sys
from pathlib import Path

PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            points.append(point)
    return sorted(set(points), key=len)


def _drop_capabilities() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # fails past the last capability: ignored
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    header = Header(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    with open("/proc/self/status", encoding="utf-8") as f:
        eff = next(line.split()[1] for line in f if line.startswith("CapEff:"))
    if int(eff, 16) != 0:
        raise OSError("capabilities still effective after capset")


def _sandbox(scratch: Path, hide: list[str]) -> list[str]:
    """Hide secrets, make everything but the scratch folder read-only, drop capabilities."""
    _mount("--make-rprivate", "/")
    for path in hide:
        if Path(path).is_dir() and not scratch.is_relative_to(path):
            _mount("-t", "tmpfs", "-o", "ro,size=4k,mode=000", "tmpfs", path)
    _mount("--bind", str(scratch), str(scratch))
    for point in _mount_points():
        if point == str(scratch) or point in hide:
            continue
        try:
            _mount("-o", "remount,bind,ro", point)
        except subprocess.CalledProcessError:
            if point == "/":
                raise
    _drop_capabilities()
    return [
        "no network (unshare --net)",
        "read-only file system except the scratch folder",
        "registry home and keys hidden",
        "no capabilities",
    ]


def main(argv: list[str]) -> int:
    model_dir, scratch, hide = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    # The model's own prints must not corrupt the protocol: stdout becomes stderr, the pipe a private fd.
    pipe_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    pipe_in = sys.stdin.buffer

    def send(obj: dict, payload: bytes | None = None) -> None:
        for data in (json.dumps(obj).encode(), payload):
            if data is not None:
                pipe_out.write(len(data).to_bytes(8, "big") + data)
        pipe_out.flush()

    try:
        isolation = [
            "resource limits (address space, CPU, open files, file size)",
            "scratch working folder",
            "no registry credentials in the environment",
        ]
        if os.environ.get("MODELREG_WORKER_SANDBOX") == "1":
            isolation += _sandbox(scratch, hide)
        os.chdir(scratch)
        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = (
            "true"  # this process exists to run this one model
        )
        import yaml

        flavors = (yaml.safe_load((model_dir / "MLmodel").read_text()) or {}).get("flavors") or {}
        if "sklearn" in flavors:
            import mlflow.sklearn

            model = mlflow.sklearn.load_model(str(model_dir))
        else:
            import mlflow.pyfunc

            model = mlflow.pyfunc.load_model(str(model_dir))
        methods = [m for m in ("predict", "predict_proba") if callable(getattr(model, m, None))]
        features = getattr(model, "feature_names_in_", None)
        send(
            {
                "ok": True,
                "methods": methods,
                "features": [str(f) for f in features] if features is not None else None,
                "isolation": isolation,
            }
        )
    except BaseException as exc:  # report, never hang the parent
        send({"ok": False, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
        return 3

    import numpy as np
    import pyarrow as pa

    def read() -> bytes:
        head = pipe_in.read(8)
        if len(head) < 8:
            raise EOFError
        n = int.from_bytes(head, "big")
        data = pipe_in.read(n)
        if len(data) < n:
            raise EOFError
        return data

    while True:
        try:
            request = json.loads(read())
            frame = pa.ipc.open_stream(read()).read_all().to_pandas()
        except EOFError:
            return 0
        try:
            if request.get("method") not in methods:
                raise ValueError(f"method {request.get('method')!r} not offered")
            out = getattr(model, request["method"])(frame)
            if hasattr(out, "to_numpy"):
                out = out.to_numpy()
            arr = np.asarray(out, dtype=np.float64)
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            send({"ok": True}, buf.getvalue())
        except Exception as exc:
            send(
                {
                    "ok": False,
                    "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
                }
            )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
