"""Pure computations: data (and optionally a model) in, ``MonitorResult`` out.

This package never imports ``modelreg``. Heavy libraries (evidently, shap, fairlearn, mlflow, and pandas
itself) are imported lazily inside the functions that need them, so reading the monitors' declarations is
cheap.

A bank adds its own monitor the way the built-ins are registered: a ``Monitor`` subclass that declares
``kind``, ``version``, ``metrics`` (every metric name it may emit: the policy loader accepts exactly these
for its kind) and ``needs`` (which of model, reference, profile, baseline the runner hands it), exposed
through the ``modelreg.monitors`` entry point of its own distribution::

    [project.entry-points."modelreg.monitors"]
    missing_rate = "acme_checks:MissingRateMonitor"

An entry point may not take a built-in kind's name (``MonitorPluginError``). See ``tests/monitors/test_plugin.py``.
"""

from monitors.base import (
    Artifact,
    ColumnSpec,
    DataFingerprint,
    Feature,
    Metric,
    MetricStatus,
    Monitor,
    MonitorPluginError,
    MonitorResult,
    ParameterError,
    ReferenceProfile,
    get_monitor,
    known_metrics,
    monitor_class,
    monitor_classes,
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
    "MonitorPluginError",
    "MonitorResult",
    "ParameterError",
    "ReferenceProfile",
    "get_monitor",
    "known_metrics",
    "monitor_class",
    "monitor_classes",
    "monitor_kinds",
]
