"""Pure computations: data (and optionally a model) in, ``MonitorResult`` out.

This package never imports ``modelreg``. Heavy libraries (evidently, shap, fairlearn, mlflow) are imported
lazily inside the functions that need them.
"""

from monitors.base import (
    Artifact,
    ColumnSpec,
    DataFingerprint,
    Feature,
    Metric,
    MetricStatus,
    Monitor,
    MonitorResult,
    ParameterError,
    ReferenceProfile,
    get_monitor,
    monitor_kinds,
)

__all__ = [
    "Artifact",
    "ColumnSpec",
    "DataFingerprint",
    "Feature",
    "Metric",
    "MetricStatus",
    "Monitor",
    "MonitorResult",
    "ParameterError",
    "ReferenceProfile",
    "get_monitor",
    "monitor_kinds",
]
