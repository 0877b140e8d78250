"""AWS Signature Version 4 checks on a received request, recomputed with botocore's own signer.

`verify` parses ``Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…``, looks
the access key up, checks the credential scope (region, service, date) and the clock skew, then
recomputes the signature with ``botocore.auth.SigV4Auth`` over the method, the raw path and query as
received, exactly the headers the client listed as signed, and the body; a mismatch is refused as AWS
refuses it. Failures are `SigV4Error` with AWS's status, error code and message; the caller renders
them in the service's error format. No I/O.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_SKEW = datetime.timedelta(minutes=15)
MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS "
    "Secret Access Key and signing method. Consult the service documentation for details."
)
INVALID_TOKEN = "The security token included in the request is invalid."
EXPIRED_TOKEN = "The security token included in the request is expired"


class SigV4Error(Exception):
    """A refused signature: AWS's HTTP status, error code (``x-amzn-ErrorType``) and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class Secret:
    """What the service knows about one access key: its secret and, for temporary keys, the session token."""

    secret_access_key: str
    session_token: str | None = None


@dataclass(frozen=True, slots=True)
class Authorization:
    """The parts of a SigV4 ``Authorization`` header."""

    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str


def _incomplete(message: str) -> SigV4Error:
    return SigV4Error(400, "IncompleteSignatureException", message)


def parse_authorization(value: str) -> Authorization:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise _incomplete(f"Unsupported AWS 'algorithm': '{algorithm}'")
    params = {}
    for part in rest.split(","):
        name, sep, item = part.strip().partition("=")
        if sep:
            params[name] = item
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not params.get(name)]
    if missing:
        raise _incomplete(" ".join(f"Authorization header requires '{name}' parameter." for name in missing))
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope):
        raise _incomplete(
            "Credential should be scoped to a valid region, service and date: "
            "'<access key>/<date>/<region>/<service>/aws4_request'."
        )
    signed = tuple(name.strip().lower() for name in params["SignedHeaders"].split(";"))
    return Authorization(scope[0], scope[1], scope[2], scope[3], signed, params["Signature"])


class _Recompute(SigV4Auth):
    """botocore's signer, restricted to the headers the client said it signed."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: Iterable[str]) -> None:
        super().__init__(credentials, service, region)
        self._signed = set(signed)

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        header_map = HTTPHeaders()
        for name, value in request.headers.items():
            if name.lower() in self._signed:
                header_map[name.lower()] = value
        return header_map


def expected_signature(
    method: str,
    raw_path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    auth: Authorization,
    secret: str,
    timestamp: str,
) -> str:
    """The signature botocore computes for this request with `secret` (`raw_path` includes the query)."""
    request = AWSRequest(method=method.upper(), url=f"http://simulator{raw_path}", data=body)
    for name, value in headers:
        request.headers[name] = value
    request.context["timestamp"] = timestamp
    signer = _Recompute(Credentials(auth.access_key, secret), auth.service, auth.region, auth.signed_headers)
    canonical = signer.canonical_request(request)
    return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def verify(
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    *,
    region: str,
    service: str,
    lookup: Callable[[str], Secret | None],
    expired_tokens: frozenset[str] = frozenset(),
    now: datetime.datetime | None = None,
) -> str:
    """Checks the request's SigV4 signature; returns the access key id, else raises SigV4Error."""
    value = _header(headers, "authorization")
    if not value:
        raise SigV4Error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    auth = parse_authorization(value)
    timestamp = _header(headers, "x-amz-date")
    if not timestamp:
        raise _incomplete("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    try:
        signed_at = datetime.datetime.strptime(timestamp, TIMESTAMP).replace(tzinfo=datetime.UTC)
    except ValueError:
        raise _incomplete(f"Date must be in ISO-8601 'basic format'. Got '{timestamp}'.") from None
    if "host" not in auth.signed_headers:
        raise _incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    token = _header(headers, "x-amz-security-token")
    if token is not None and token in expired_tokens:
        raise SigV4Error(403, "ExpiredTokenException", EXPIRED_TOKEN)
    secret = lookup(auth.access_key)
    if secret is None or (secret.session_token is not None and token != secret.session_token):
        raise SigV4Error(403, "UnrecognizedClientException", INVALID_TOKEN)
    if auth.region != region:
        raise SigV4Error(403, "InvalidSignatureException",
                         f"Credential should be scoped to a valid region, not '{auth.region}'. ")
    if auth.service != service:
        raise SigV4Error(403, "InvalidSignatureException",
                         f"Credential should be scoped to correct service: '{service}'. ")
    if auth.date != timestamp[:8]:
        raise SigV4Error(403, "InvalidSignatureException",
                         f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
                         f"from HTTP: '{auth.date}' != '{timestamp[:8]}', from '{timestamp}'.")
    now = now or datetime.datetime.now(datetime.UTC)
    if signed_at < now - MAX_SKEW:
        raise SigV4Error(403, "InvalidSignatureException",
                         f"Signature expired: {timestamp} is now earlier than {(now - MAX_SKEW):{TIMESTAMP}} "
                         f"({now:{TIMESTAMP}} - 15 min.)")
    if signed_at > now + MAX_SKEW:
        raise SigV4Error(403, "InvalidSignatureException",
                         f"Signature not yet current: {timestamp} is still later than "
                         f"{(now + MAX_SKEW):{TIMESTAMP}} ({now:{TIMESTAMP}} + 15 min.)")
    content_sha = _header(headers, "x-amz-content-sha256")
    if content_sha not in (None, "UNSIGNED-PAYLOAD") and content_sha != hashlib.sha256(body).hexdigest():
        raise SigV4Error(400, "InvalidSignatureException",
                         "The provided 'x-amz-content-sha256' header does not match what was computed.")
    expected = expected_signature(method, raw_path, headers, body, auth, secret.secret_access_key, timestamp)
    if not hmac.compare_digest(expected, auth.signature):
        raise SigV4Error(403, "InvalidSignatureException", MISMATCH)
    return auth.access_key
