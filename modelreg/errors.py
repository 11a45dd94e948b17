"""One error hierarchy. Each condition has a stable code and an exit status.

Exit statuses follow the CLI contract: 1 = the command ran and the answer is "no" (refused, check failed,
verification failed); 2 = usage or input error. The CLI catches only ``ModelregError``.
"""

from __future__ import annotations


class ModelregError(Exception):
    """Base of every error modelreg raises on purpose."""

    code: str = "error"
    exit_status: int = 2

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_dict(self) -> dict:
        return {
            "error": self.code,
            "message": self.message,
            **({"details": self.details} if self.details else {}),
        }


class BadInput(ModelregError, ValueError):
    code = "bad_input"


class ConfigError(ModelregError):
    code = "config_error"


class DatabaseUnavailable(ModelregError):
    code = "database_unavailable"


class SchemaError(ModelregError):
    """The database schema is missing, unknown or newer than this code."""

    code = "schema_error"


class NotFound(ModelregError, LookupError):
    code = "not_found"


class AlreadyExists(ModelregError):
    code = "already_exists"


class PermissionDenied(ModelregError, PermissionError):
    code = "permission_denied"
    exit_status = 1


class InvalidTransition(ModelregError):
    code = "invalid_transition"
    exit_status = 1


class ConcurrentModification(ModelregError):
    """A compare-and-set lost against another writer; nothing was written."""

    code = "concurrent_modification"
    exit_status = 1


class GateRefused(ModelregError):
    """A gate's requirements are not met. ``unmet`` lists every one, with the clause it comes from."""

    code = "gate_refused"
    exit_status = 1

    def __init__(self, message: str, *, unmet: list[dict] | None = None) -> None:
        super().__init__(message, details={"unmet": unmet or []})
        self.unmet = unmet or []


class SegregationOfDuties(ModelregError):
    code = "segregation_of_duties"
    exit_status = 1


class ApprovalRequired(ModelregError):
    code = "approval_required"
    exit_status = 1


class PolicyError(ModelregError):
    code = "policy_error"


class SignatureError(ModelregError):
    code = "signature_error"
    exit_status = 1


class VerificationFailed(ModelregError):
    code = "verification_failed"
    exit_status = 1


class StateDiverges(VerificationFailed):
    """A row the command relies on disagrees with the audit log (edited outside the registry), or the log's
    newest event is not signed by the registry: the command refuses instead of acting on forged state."""

    code = "state_diverges"


class MissingExtra(ModelregError, ImportError):
    code = "missing_extra"

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(f"{package} is not installed. Install the extra: pip install 'modelreg[{extra}]'")


class MlflowError(ModelregError):
    code = "mlflow_error"


class AuthenticationFailed(ModelregError):
    """The service could not establish who is calling (no, a forged, an expired or a replayed credential)."""

    code = "authentication_failed"
    exit_status = 1
