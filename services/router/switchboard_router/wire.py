"""Domain ↔ protobuf: the only module that knows the router.proto field layout."""

from google.protobuf.duration_pb2 import Duration

from switchboard.router.v1 import router_pb2
from switchboard_router.accounts import Account, State

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
    """The Account message; the credential only when `with_credential` (Pick, never listings).

    `timeout` is left unset when the account has none, so the edge applies its own.
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
    )
    if account.timeout_seconds > 0:
        message.timeout.CopyFrom(duration(account.timeout_seconds))
    if with_credential:
        message.credential.api_key = account.api_key
        message.credential.secrets.update(account.secrets)
    return message


def account_status(account: Account, in_flight: int) -> router_pb2.AccountStatus:
    return router_pb2.AccountStatus(
        account=account_message(account, with_credential=False),
        state=STATES[account.state],
        in_flight=in_flight,
        models=account.models,
    )
