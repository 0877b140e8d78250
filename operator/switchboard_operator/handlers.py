"""The kopf handlers: UpstreamAccount (+ its Secret) -> the router's managed account, and its live state back.

- create / update / resume: read the Secret, build the accounts-file entry (`builder`), `UpsertAccount`;
- a finalizer (kopf adds it for the delete handler): `DeleteAccount`, then the object goes;
- Secret events: every UpstreamAccount naming the Secret is pushed again (credential rotation, no restart);
- a timer per UpstreamAccount: `ListAccounts` -> `status` (`conditions.status`), the account pushed again if the
  router lost it (an in-memory router restarted), and a refreshed OAuth credential written back to the Secret.

Router errors that may pass (unavailable, deadline) are retried by kopf with a doubling delay
(`kopf.TemporaryError`); a spec or Secret the router refuses is reported in `status` and waits for a change.
Everything is idempotent: pushing the same account again replaces it with itself. No log line, status field or
event holds a Secret value: messages name fields and keys only (the router's own messages never hold values).
"""

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import grpc
import kopf

from switchboard_operator import builder
from switchboard_operator.conditions import Live, Observed, Problem, changed, status
from switchboard_operator.kube import Kube, KubeError, SecretNotFound
from switchboard_operator.router_client import TRANSIENT, RouterClient
from switchboard_operator.settings import OperatorSettings

GROUP, VERSION, PLURAL = "switchboard.dev", "v1alpha1", "upstreamaccounts"
FINALIZER = "switchboard.dev/router-account"
ANNOTATIONS_PREFIX = "switchboard.dev"

Login = Callable[..., kopf.ConnectionInfo | None | Awaitable[kopf.ConnectionInfo | None]]


class Retry(Exception):
    """Pushing failed for a reason that may pass (the router or the API server is unreachable)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _secret_name(spec: Mapping[str, Any]) -> str:
    ref = spec.get("credentialsSecretRef") or {}
    return str(ref.get("name", "")) if isinstance(ref, Mapping) else ""


def _grpc_problem(exc: grpc.aio.AioRpcError, doing: str) -> Problem | Retry:
    details = " ".join((exc.details() or "").split())[:800]
    if exc.code() in TRANSIENT:
        return Retry(Problem("RouterUnavailable", f"{doing}: router unreachable ({exc.code().name}): {details}"))
    return Problem("RouterRefused", f"{doing}: the router refused it ({exc.code().name}): {details}")


class Operator:
    def __init__(self, settings: OperatorSettings, router: RouterClient | None = None, kube: Kube | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.settings = settings
        self.router = router or RouterClient(settings.router_target, settings.router_timeout_seconds)
        self.kube = kube or Kube()
        self.clock = clock
        # UpstreamAccounts (namespace, name) whose Secret changed while the router could not be reached.
        self.stale: set[tuple[str, str]] = set()

    def backoff(self, retry: int) -> float:
        return float(min(self.settings.max_backoff_seconds, 2 ** min(retry, 16)))

    # --- pushing one account ------------------------------------------------------------------------------------

    async def push(self, namespace: str, name: str, spec: Mapping[str, Any],
                   secret_body: Mapping[str, Any] | None = None) -> Live | Problem:
        """Reads the Secret (unless given), builds the entry and upserts it. Returns the router's view of the
        account, or the `Problem` that needs a change to the spec or Secret; raises `Retry`."""
        secret_name = _secret_name(spec)
        if secret_body is None:
            try:
                secret_body = await self.kube.get_secret(namespace, secret_name)
            except SecretNotFound:
                raise Retry(Problem("SecretMissing", f"Secret {namespace}/{secret_name} not found")) from None
            except (KubeError, OSError) as exc:  # aiohttp's client errors are OSErrors
                raise Retry(Problem("SecretUnreadable", str(exc)[:500])) from None
        try:
            entry = builder.build_account(namespace, name, spec,
                                          builder.decode_secret(secret_body.get("data")))
        except builder.SpecError as exc:
            return Problem("InvalidSpec", f"Secret {namespace}/{secret_name}: {exc}")
        try:
            return await self.router.upsert(entry)
        except grpc.aio.AioRpcError as exc:
            outcome = _grpc_problem(exc, "UpsertAccount")
            if isinstance(outcome, Retry):
                raise outcome from None
            return outcome

    # --- handlers ------------------------------------------------------------------------------------------------

    async def reconcile(self, spec: kopf.Spec, name: str | None, namespace: str | None, meta: kopf.Meta,
                        status: kopf.Status, patch: kopf.Patch, retry: int, logger: kopf.Logger,
                        **_: Any) -> None:
        assert name is not None and namespace is not None
        platform = str(spec.get("platform", ""))
        account_id = builder.account_id(platform, namespace, name)
        previous_id = status.get("accountId")
        if previous_id and previous_id != account_id:  # platform changed (the CRD forbids it; be safe anyway)
            await self._delete(previous_id, retry, logger)
        try:
            outcome = await self.push(namespace, name, spec)
        except Retry as exc:
            self._set_status(patch, status, account_id, meta, None, exc.problem)
            raise kopf.TemporaryError(exc.problem.message, delay=self.backoff(retry)) from None
        if isinstance(outcome, Problem):
            self._set_status(patch, status, account_id, meta, None, outcome)
            raise kopf.PermanentError(outcome.message)
        self._set_status(patch, status, account_id, meta, outcome, None)
        logger.info("account %s pushed to the router", account_id)

    async def remove(self, spec: kopf.Spec, name: str | None, namespace: str | None, status: kopf.Status,
                     retry: int, logger: kopf.Logger, **_: Any) -> None:
        assert name is not None and namespace is not None
        account_id = status.get("accountId") or builder.account_id(str(spec.get("platform", "")), namespace, name)
        await self._delete(account_id, retry, logger)

    async def _delete(self, account_id: str, retry: int, logger: kopf.Logger) -> None:
        try:
            deleted = await self.router.delete(account_id)
        except grpc.aio.AioRpcError as exc:
            outcome = _grpc_problem(exc, "DeleteAccount")
            if isinstance(outcome, Retry):
                raise kopf.TemporaryError(outcome.problem.message, delay=self.backoff(retry)) from None
            logger.warning("account %s not deleted from the router: %s", account_id, outcome.message)
            return
        logger.info("account %s %s", account_id, "deleted from the router" if deleted else "was not in the router")

    async def secret_changed(self, type: str | None, body: kopf.Body, name: str, namespace: str | None,
                             logger: kopf.Logger, **kwargs: Any) -> None:
        """A Secret was created or changed: push every UpstreamAccount that names it (rotation)."""
        secret_refs: kopf.Index[tuple[str, str], dict[str, Any]] = kwargs["secret_refs"]
        key = (str(namespace), name)
        if type not in ("ADDED", "MODIFIED") or key not in secret_refs:
            return  # the initial listing (type None) is covered by the resume handlers
        for ref in list(secret_refs[key]):
            account_id = builder.account_id(str(ref["spec"].get("platform", "")), str(namespace), ref["name"])
            try:
                outcome = await self.push(str(namespace), ref["name"], ref["spec"], body)
            except Retry as exc:  # event handlers are not retried: the status timer pushes it again
                self.stale.add((str(namespace), ref["name"]))
                logger.warning("Secret %s changed; account %s not pushed yet (%s): retried by the status timer",
                               name, account_id, exc.problem.message)
                continue
            self.stale.discard((str(namespace), ref["name"]))
            if isinstance(outcome, Problem):
                logger.warning("Secret %s changed; account %s not pushed: %s", name, account_id, outcome.message)
            else:
                logger.info("Secret %s changed: account %s pushed with its credential", name, account_id)

    async def refresh(self, spec: kopf.Spec, name: str | None, namespace: str | None, meta: kopf.Meta,
                      status: kopf.Status, patch: kopf.Patch, logger: kopf.Logger, **_: Any) -> None:
        """The timer: the router's live view into `status`; re-push if the router lost the account; write a
        refreshed credential back to the Secret."""
        assert name is not None and namespace is not None
        platform = str(spec.get("platform", ""))
        account_id = builder.account_id(platform, namespace, name)
        try:
            listed = (await self.router.list(platform)).get(account_id)
        except grpc.aio.AioRpcError as exc:
            failed = _grpc_problem(exc, "ListAccounts")
            self._set_status(patch, status, account_id, meta, None,
                             failed.problem if isinstance(failed, Retry) else failed)
            return
        live: Live | None = listed.live if listed is not None else None
        missing: Problem | None = None
        if listed is None or (namespace, name) in self.stale:
            logger.info("account %s is %s: pushing it again", account_id,
                        "not in the router" if listed is None else "pending a Secret change")
            try:
                pushed = await self.push(namespace, name, spec)
            except Retry as exc:
                pushed = exc.problem
            if isinstance(pushed, Problem):
                missing = pushed
            else:
                live = pushed
                self.stale.discard((namespace, name))
        elif listed.stored is not None:
            await self._write_back(namespace, platform, _secret_name(spec), account_id, listed.stored, logger)
        self._set_status(patch, status, account_id, meta, live, missing)

    async def _write_back(self, namespace: str, platform: str, secret_name: str, account_id: str,
                          stored: tuple[str, Mapping[str, str]], logger: kopf.Logger) -> None:
        try:
            secret = await self.kube.get_secret(namespace, secret_name)
            current = builder.decode_secret(secret.get("data"))
            changes = builder.secret_writeback(platform, stored[0], stored[1], current)
            if changes:
                await self.kube.patch_secret_data(namespace, secret_name, builder.encode_secret(changes))
                logger.info("account %s: refreshed credential written back to Secret %s (keys %s)",
                            account_id, secret_name, ", ".join(sorted(changes)))
        except (KubeError, SecretNotFound, builder.SpecError, OSError) as exc:
            logger.warning("account %s: refreshed credential not written back to Secret %s: %s",
                           account_id, secret_name, exc)

    def _set_status(self, patch: kopf.Patch, current: Mapping[str, Any], account_id: str, meta: kopf.Meta,
                    live: Live | None, problem: Problem | None) -> None:
        observed = Observed(account_id, int(meta.get("generation") or 0), live, problem,
                            tuple(current.get("conditions") or ()))
        for key, value in changed(current, status(observed, self.clock())).items():
            patch.status[key] = value

    # --- wiring --------------------------------------------------------------------------------------------------

    def registry(self, login: Login | None = None) -> kopf.OperatorRegistry:
        """Every handler in a registry of its own. `login` replaces the default (the pod's service account,
        else KUBECONFIG or ~/.kube/config)."""
        registry = kopf.OperatorRegistry()
        ua = (GROUP, VERSION, PLURAL)

        @kopf.on.startup(registry=registry)
        def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
            settings.persistence.finalizer = FINALIZER
            settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATIONS_PREFIX)
            settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=ANNOTATIONS_PREFIX)
            settings.posting.level = logging.WARNING

        @kopf.on.login(registry=registry)
        async def authenticate(**kwargs: Any) -> kopf.ConnectionInfo | None:
            if login is not None:
                result = login(**kwargs)
                info = await result if isinstance(result, Awaitable) else result
            else:
                info = kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)
            if info is not None:
                self.kube.connect(info)
            return info

        @kopf.on.cleanup(registry=registry)
        async def close(**_: Any) -> None:
            await self.router.close()
            await self.kube.close()

        @kopf.index(*ua, registry=registry, id="secret_refs")
        def secret_refs(spec: kopf.Spec, name: str | None, namespace: str | None,
                        **_: Any) -> dict[tuple[str, str], dict[str, Any]]:
            return {(str(namespace), _secret_name(spec)): {"name": name, "spec": dict(spec)}}

        kopf.on.create(*ua, registry=registry, id="push")(self.reconcile)
        kopf.on.update(*ua, registry=registry, id="push", field="spec")(self.reconcile)
        kopf.on.resume(*ua, registry=registry, id="push")(self.reconcile)
        kopf.on.delete(*ua, registry=registry, id="remove")(self.remove)
        kopf.timer(*ua, registry=registry, id="status", interval=self.settings.status_interval_seconds,
                   initial_delay=min(1.0, self.settings.status_interval_seconds))(self.refresh)
        kopf.on.event("", "v1", "secrets", registry=registry, id="secret")(self.secret_changed)
        return registry
