"""The service's JSON errors: ``{"error": {"code", "message"[, "details"]}}`` with the stable codes of
``modelreg.errors`` and an HTTP status per code. Never a stack trace."""

from __future__ import annotations

from modelreg import errors as E

STATUS: dict[str, int] = {
    E.BadInput.code: 400,
    E.PolicyError.code: 400,
    E.AuthenticationFailed.code: 401,
    E.PermissionDenied.code: 403,
    E.SegregationOfDuties.code: 403,
    E.NotFound.code: 404,
    E.AlreadyExists.code: 409,
    E.InvalidTransition.code: 409,
    E.ConcurrentModification.code: 409,
    E.GateRefused.code: 409,
    E.ApprovalRequired.code: 409,
    E.SignatureError.code: 422,
    E.VerificationFailed.code: 409,
    E.StateDiverges.code: 409,
    E.MissingExtra.code: 501,
    E.ConfigError.code: 500,
    E.SchemaError.code: 503,
    E.DatabaseUnavailable.code: 503,
    E.MlflowError.code: 502,
    # service-only conditions
    "precondition_failed": 412,
    "precondition_required": 428,
    "payload_too_large": 413,
    "rate_limited": 429,
    "method_not_allowed": 405,
    "internal_error": 500,
}


class ServiceError(E.ModelregError):
    """A condition only the HTTP service has (a missing If-Match, a too large body, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def status_of(code: str) -> int:
    return STATUS.get(code, 400)


def body(code: str, message: str, details: dict | None = None) -> dict:
    err: dict = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"error": err}


def error_class(code: str) -> type[E.ModelregError]:
    """The modelreg error a remote client raises for a code (same message, same exit status as locally)."""
    classes = [
        E.BadInput, E.ConfigError, E.DatabaseUnavailable, E.SchemaError, E.NotFound, E.AlreadyExists,
        E.PermissionDenied, E.InvalidTransition, E.ConcurrentModification, E.SegregationOfDuties,
        E.ApprovalRequired, E.PolicyError, E.SignatureError, E.VerificationFailed, E.StateDiverges,
        E.MlflowError, E.AuthenticationFailed,
    ]  # fmt: skip
    return {c.code: c for c in classes}.get(code, E.ModelregError)
