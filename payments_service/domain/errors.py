"""Why a use case refused, or could not finish, a request. The web layer turns each into an answer."""

from __future__ import annotations

from collections.abc import Mapping


class ServiceError(Exception):
    """A use case refused a request; status and type say how."""

    status = 400
    type = "about:blank"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409
    type = "urn:payments-service:problem:conflict"


class RefundNotYetApplicable(Conflict):
    """A refund for a payment we have not yet seen paid; Stripe will send it again."""


class InvalidRequest(ServiceError):
    """Input that passed the schema but breaks a rule that needs configuration or state."""

    status = 422

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("the request has invalid fields")
        self.errors = dict(errors)


class VersionConflict(Exception):
    """The payment changed between read and write; read it again."""


class BookingBusy(Exception):
    """Another holder keeps this lock (a booking's, or reconciliation's) longer than we wait."""


class StripeFailure(Exception):
    """Stripe refused or could not be reached; carries Stripe's message and request id."""

    def __init__(
        self,
        message: str,
        request_id: str | None = None,
        code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id
        self.code = code
        self.http_status = http_status

    @property
    def refused(self) -> bool:
        """Stripe answered and said no (4xx), as opposed to failing or not answering."""
        return self.http_status is not None and 400 <= self.http_status < 500


class StripeRateLimited(Exception):
    """Stripe's rate limits leave no place for a call within the caller's wait bound.

    `retry_after`: seconds until a place is likely, from the queue ahead of the caller.
    """

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Stripe's rate limit is reached; retry in {retry_after:.1f}s")
        self.retry_after = retry_after
