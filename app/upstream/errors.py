"""What can go wrong talking to ONEPlatform, as one exception tree.

::

    UpstreamError                      base; carries the upstream method name
    ├── UpstreamUnavailable            no usable answer: retry later
    │   ├── UpstreamTimeout            connect/read timeout
    │   ├── UpstreamConnectionError    refused, reset, DNS
    │   ├── UpstreamRateLimited        HTTP 429 (we exceeded a documented limit)
    │   ├── UpstreamServerError        HTTP 5xx
    │   └── UpstreamCircuitOpen        not called: the method failed repeatedly just now
    ├── UpstreamBadResponse            unreadable body, or an unexpected HTTP status
    └── OperationError                 the API answered with an operationCode != 200
        ├── InvalidCustomer            300
        ├── InvalidUserIp              301
        ├── InvalidUserId              302
        ├── ServerNotAllowed           303
        ├── InvalidStreamName          304
        ├── InvalidRedirectUrl         305
        ├── RegionBlocked              306
        ├── ProviderFailure            307
        ├── InvalidTransactionRef      308
        ├── EventNotFound              401
        ├── EventPending               402
        ├── EventClosed                403
        └── EventCancelled             404

Messages never contain the customerUid: URLs are redacted before they reach here.
"""

from __future__ import annotations


class UpstreamError(Exception):
    def __init__(self, method: str, message: str) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.message = message


class UpstreamUnavailable(UpstreamError):
    pass


class UpstreamTimeout(UpstreamUnavailable):
    pass


class UpstreamConnectionError(UpstreamUnavailable):
    pass


class UpstreamRateLimited(UpstreamUnavailable):
    def __init__(self, method: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(method, message)
        self.retry_after_s = retry_after_s


class UpstreamServerError(UpstreamUnavailable):
    def __init__(self, method: str, message: str, status_code: int) -> None:
        super().__init__(method, message)
        self.status_code = status_code


class UpstreamCircuitOpen(UpstreamUnavailable):
    def __init__(self, method: str, message: str, retry_after_s: float) -> None:
        super().__init__(method, message)
        self.retry_after_s = retry_after_s


class UpstreamBadResponse(UpstreamError):
    pass


class OperationError(UpstreamError):
    """ONEPlatform refused the call with a documented (or unknown) operationCode."""

    operation_code: int = 0

    def __init__(self, method: str, message: str, operation_code: int | None = None) -> None:
        super().__init__(method, message)
        if operation_code is not None:
            self.operation_code = operation_code


class InvalidCustomer(OperationError):
    operation_code = 300


class InvalidUserIp(OperationError):
    operation_code = 301


class InvalidUserId(OperationError):
    operation_code = 302


class ServerNotAllowed(OperationError):
    operation_code = 303


class InvalidStreamName(OperationError):
    operation_code = 304


class InvalidRedirectUrl(OperationError):
    operation_code = 305


class RegionBlocked(OperationError):
    operation_code = 306


class ProviderFailure(OperationError):
    operation_code = 307


class InvalidTransactionRef(OperationError):
    operation_code = 308


class EventNotFound(OperationError):
    operation_code = 401


class EventPending(OperationError):
    operation_code = 402


class EventClosed(OperationError):
    operation_code = 403


class EventCancelled(OperationError):
    operation_code = 404


OPERATION_ERRORS: dict[int, type[OperationError]] = {
    cls.operation_code: cls
    for cls in (
        InvalidCustomer,
        InvalidUserIp,
        InvalidUserId,
        ServerNotAllowed,
        InvalidStreamName,
        InvalidRedirectUrl,
        RegionBlocked,
        ProviderFailure,
        InvalidTransactionRef,
        EventNotFound,
        EventPending,
        EventClosed,
        EventCancelled,
    )
}


def operation_error(method: str, code: int, message: str) -> OperationError:
    """The typed error for an operationCode; unknown codes keep their number."""
    cls = OPERATION_ERRORS.get(code)
    if cls is None:
        return OperationError(method, message, operation_code=code)
    return cls(method, message)
