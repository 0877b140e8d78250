"""Domain ↔ protobuf: the only module that knows the router.proto field layout."""

from urllib.parse import urlsplit, urlunsplit

from google.protobuf.duration_pb2 import Duration

from switchboard.router.v1 import router_pb2
from switchboard_router.accounts import Account, State
from switchboard_router.state import Health, HoldKind

STATES = {
    State.READY: router_pb2.ACCOUNT_STATE_READY,
    State.COOLING: router_pb2.ACCOUNT_STATE_COOLING,
    State.ERROR: router_pb2.ACCOUNT_STATE_ERROR,
    State.DISABLED: router_pb2.ACCOUNT_STATE_DISABLED,
}

# Outcome enum value → short metric label: OUTCOME_RATE_LIMITED → "rate_limited".
OUTCOME_LABELS: dict[int, str] = {
    value.number: value.name.removeprefix("OUTCOME_").lower()
    for value in router_pb2.Outcome.DESCRIPTOR.values
}


def outcome_label(outcome: int) -> str:
    return OUTCOME_LABELS.get(outcome, "unspecified")


def duration(seconds: float) -> Duration:
    value = Duration()
    value.FromNanoseconds(round(seconds * 1e9))
    return value


def account_message(account: Account, *, with_credential: bool) -> router_pb2.Account:
    """The Account message; the credential only when `with_credential` (Pick, never listings),
    and in listings a proxy URL's password is masked.

    `timeout` and `connect_timeout` are left unset when the account has none, so the edge
    applies its own.
    """
    message = router_pb2.Account(
        id=account.id,
        name=account.name,
        platform=account.platform,
        base_url=account.base_url,
        model_mapping=account.model_mapping,
        headers=account.headers,
        priority=account.priority,
        groups=sorted(account.groups),
        region=account.region,
        proxy_url=account.proxy_url if with_credential else masked_proxy_url(account.proxy_url),
        deployments=account.deployments,
        api_version=account.api_version,
        path_style=account.path_style,
        organization=account.organization,
        project=account.project,
    )
    if account.timeout_seconds > 0:
        message.timeout.CopyFrom(duration(account.timeout_seconds))
    if account.connect_timeout_seconds > 0:
        message.connect_timeout.CopyFrom(duration(account.connect_timeout_seconds))
    if with_credential:
        message.credential.api_key = account.api_key
        message.credential.secrets.update(account.secrets)
    return message


def masked_proxy_url(url: str) -> str:
    """`scheme://user:***@host:port` for a URL with a password; others unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{parts.username or ''}:***@{host}", parts.path, parts.query, parts.fragment))


def credential_of(message: router_pb2.Credential) -> tuple[str, dict[str, str]]:
    """A Credential message as (api_key, secrets)."""
    return message.api_key, dict(message.secrets)


def live_state(account: Account, health: Health | None) -> State:
    """The account's state with its live holds: a whole-account hold makes a ready account cooling (in error
    for a refused credential); holds of one model family leave it ready for the others."""
    state = account.state
    whole = health.holds.get((account.id, ""), ()) if health else ()
    if state is State.READY and whole:
        return State.ERROR if any(hold.kind is HoldKind.ERROR for hold in whole) else State.COOLING
    return state


def account_status(account: Account, in_flight: int, health: Health | None = None,
                   source: str = "file") -> router_pb2.AccountStatus:
    """The account without its credential, with its live state: a whole-account hold makes it cooling (in
    error for a refused credential); holds of one model family leave it ready for the others."""
    holds = [(family, hold) for (held, family), kept in (health.holds.items() if health else ())
             if held == account.id for hold in kept]
    windows = [(family, window) for (held, family), kept in (health.windows.items() if health else ())
               if held == account.id for window in kept]
    return router_pb2.AccountStatus(
        account=account_message(account, with_credential=False),
        state=STATES[live_state(account, health)],
        in_flight=in_flight,
        models=account.models,
        holds=[router_pb2.AccountHold(family=family, kind=hold.kind.value, until=hold.until or 0.0,
                                      reason=hold.reason) for family, hold in holds],
        windows=[router_pb2.UsageWindow(family=family, name=window.name, utilization=window.utilization,
                                        resets_at=window.resets_at or 0.0) for family, window in windows],
        source=source,
    )

