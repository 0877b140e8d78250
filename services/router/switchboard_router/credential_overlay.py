"""Credentials stored at run time (`StoreCredential`) win over the accounts file's, and outlive restarts.

The rules this module owns:

- An edge that refreshed an account's credential (OAuth) stores the whole new one. The overlay keeps it
  together with the fingerprint (SHA-256) of the file credential it replaces. While the accounts file
  holds that same credential for the account, the stored one wins, across reloads and restarts; once
  the file's credential changes, the file wins and the entry is dropped (an operator who writes a new
  credential means it).
- A failed refresh (`error`) puts the account in the error state with that reason until a credential is
  stored or the file's credential changes; the last stored credential is kept meanwhile. The error is
  kept in memory only: the edge cannot tell a spent refresh token from a token endpoint that was briefly
  unreachable, and an account in error is never picked, so a restart is the way to try it again.
- Two edges may refresh one account: a stored credential that expires before the one held (both with
  `expires_at`) arrived late and is ignored, so the rotated refresh token is not replaced by a spent one.
- Router replicas sharing a state backend (Redis) share stored credentials: each one stored here is also
  put there (`record`), and every replica takes the newest there (`adopt`, by the same expiry rule), so an
  edge refreshing through any replica finds the rotated refresh token. The file stays this replica's own
  copy (the embedded store, and what a restart starts from).
- An account whose file credential cannot be read (an unset `*_env` variable) keeps its entry untouched;
  entries of accounts gone from the file are kept too, so adding the account back does not bring back a
  spent refresh token.

The file (JSON, one object per account id with a stored credential) is rewritten whole on every change:
a temporary file in the same directory with mode 0600, fsync, rename, fsync of the directory. It is
written on the event loop (a few kilobytes, about once an hour per OAuth account). It holds credentials:
nothing here logs or raises with a credential value, and its errors name account ids and fields only.
"""

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from switchboard_router.accounts import Account
from switchboard_router.errors import CredentialNotSaved, CredentialsFileInvalid

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
EXPIRES_AT = "expires_at"


@dataclass(frozen=True)
class Stored:
    """One account's entry: what it overrides, the stored credential (if any) and the error (if any)."""

    replaces: str  # fingerprint of the file credential this entry overrides
    api_key: str | None = field(default=None, repr=False)  # None: no credential stored, only an error
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)
    error: str = ""
    stored_at: int = 0


def fingerprint(api_key: str, secrets: Mapping[str, str]) -> str:
    """SHA-256 over a credential, to notice that the accounts file's credential changed."""
    canonical = json.dumps([api_key, sorted(secrets.items())], separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _file_credential(account: Account) -> str:
    return fingerprint(account.api_key, account.secrets)


class CredentialOverlay:
    """Account id -> `Stored`, applied over each account list a source publishes; persisted to `path`
    (None: memory only)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: dict[str, Stored] = self._load() if self.path is not None else {}

    def __len__(self) -> int:
        return len(self._entries)

    # --- rules -----------------------------------------------------------------------------------

    def apply(self, accounts: Sequence[Account]) -> list[Account]:
        """The accounts as they are live: stored credentials and errors over the file's.

        Drops (and persists the drop of) entries whose file credential changed; a failed save is logged,
        not raised (this runs on reload)."""
        live, dropped = [], []
        for account in accounts:
            entry = self._entries.get(account.id)
            if entry is None or account.error is not None:
                live.append(account)
            elif entry.replaces != _file_credential(account):
                dropped.append(account.id)
                del self._entries[account.id]
                live.append(account)
            else:
                live.append(_overlaid(account, entry))
        if dropped:
            log.info("the accounts file has a new credential for %s: the stored one is dropped", ", ".join(dropped))
            try:
                self.save()
            except CredentialNotSaved as exc:
                log.error("%s", exc)
        return live

    def store(self, account: Account, api_key: str, secrets: Mapping[str, str]) -> bool:
        """Stores a new credential for `account` (as the accounts file has it) and clears its error.
        False when it was ignored as older than the one held. Raises `CredentialNotSaved` after the
        in-memory change when the file cannot be written."""
        current = self._current(account)
        if current is not None and not current.error and _expires_before(secrets, current.secrets):
            log.info("stored credential for %s ignored: it expires before the one held", account.id)
            return False
        self._entries[account.id] = Stored(_file_credential(account), api_key, dict(secrets), "", int(time.time()))
        self.save()
        return True

    def fail(self, account: Account, reason: str) -> None:
        """Puts `account` in error with `reason` (in memory), keeping any stored credential."""
        current = self._current(account)
        base = current or Stored(_file_credential(account))
        self._entries[account.id] = replace(base, error=reason)

    def record(self, account: Account) -> bytes | None:
        """The credential stored for `account` as one JSON record (the file's entry), to share with other
        router replicas (`RouterState.put_credential`); None when none is stored."""
        entry = self.stored(account)
        return None if entry is None else json.dumps(_entry_json(entry), sort_keys=True).encode()

    def adopt(self, account: Account, record: bytes) -> bool:
        """Takes a credential another replica stored for `account` (a `record`) when it replaces the file's
        current credential and is newer than the one held: it expires later, or (neither dated) was stored
        later. Clears the error, as `store` does, and persists. True when taken; a malformed record is
        logged (by account id) and ignored. Raises `CredentialNotSaved` after the change when the file cannot
        be written."""
        try:
            shared = _entry_of(json.loads(record))
        except ValueError:
            shared = None
        if shared is None:
            log.warning("shared stored credential of %s is malformed: ignored", account.id)
            return False
        if shared.replaces != _file_credential(account):
            return False  # stored over a file credential that has changed since
        current = self.stored(account)
        if current is not None:
            if (current.api_key, dict(current.secrets)) == (shared.api_key, dict(shared.secrets)):
                return False
            if _expires_before(shared.secrets, current.secrets):
                return False
            if not _expires_before(current.secrets, shared.secrets) and shared.stored_at < current.stored_at:
                return False
        self._entries[account.id] = shared
        self.save()
        return True

    def stored(self, account: Account) -> Stored | None:
        """The credential stored for `account` that is served instead of its own, if any."""
        entry = self._current(account)
        return entry if entry is not None and entry.api_key is not None else None

    def _current(self, account: Account) -> Stored | None:
        """The entry for `account`, if it still overrides the file's credential."""
        entry = self._entries.get(account.id)
        return entry if entry is not None and entry.replaces == _file_credential(account) else None

    # --- the file --------------------------------------------------------------------------------

    def save(self) -> None:
        if self.path is None:
            return
        document = {"version": FORMAT_VERSION, "accounts": {
            account_id: _entry_json(entry) for account_id, entry in sorted(self._entries.items())
            if entry.api_key is not None
        }}
        data = json.dumps(document, indent=2, sort_keys=True).encode() + b"\n"
        directory = self.path.parent
        temporary = ""
        try:
            fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as out:  # mkstemp creates it 0600
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)
            temporary = ""
            _fsync_directory(directory)
        except OSError as exc:
            raise CredentialNotSaved(
                f"credentials file {self.path} not written ({exc.strerror or type(exc).__name__}); "
                "stored credentials are live in memory only") from None
        finally:
            if temporary:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)

    def _load(self) -> dict[str, Stored]:
        assert self.path is not None
        source = str(self.path)
        try:
            mode = self.path.stat().st_mode
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise CredentialsFileInvalid(source, f"cannot read: {problem}") from None
        if mode & 0o077:
            log.warning("credentials file %s is readable by others (mode %o); it is rewritten 0600 on the "
                        "next change", source, mode & 0o777)
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:  # its message has a position, never the text
            raise CredentialsFileInvalid(source, f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
        if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
            raise CredentialsFileInvalid(source, f"expected an object with \"version\": {FORMAT_VERSION}")
        accounts = document.get("accounts")
        if not isinstance(accounts, dict):
            raise CredentialsFileInvalid(source, "expected \"accounts\" to be an object")
        entries = {}
        for account_id, raw in accounts.items():
            entry = _entry_of(raw)
            if entry is None:
                raise CredentialsFileInvalid(source, f"entry {account_id[:200]!r} is malformed")
            entries[account_id] = entry
        log.info("credentials file %s: %d stored credential(s)", source, len(entries))
        return entries


def _overlaid(account: Account, entry: Stored) -> Account:
    if entry.api_key is None:
        return replace(account, error=entry.error or None)
    return replace(account, api_key=entry.api_key, secrets=dict(entry.secrets), error=entry.error or None)


def _expires_before(new: Mapping[str, str], held: Mapping[str, str]) -> bool:
    a, b = new.get(EXPIRES_AT, ""), held.get(EXPIRES_AT, "")
    return a.isdigit() and b.isdigit() and int(a) < int(b)


def _entry_json(entry: Stored) -> dict[str, Any]:
    out: dict[str, Any] = {"replaces": entry.replaces, "stored_at": entry.stored_at}
    out["credential"] = {"api_key": entry.api_key, "secrets": dict(entry.secrets)}
    return out


def _entry_of(raw: object) -> Stored | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("replaces"), str):
        return None
    stored_at, credential = raw.get("stored_at", 0), raw.get("credential")
    if isinstance(stored_at, bool) or not isinstance(stored_at, int) or not isinstance(credential, dict):
        return None
    api_key, secrets = credential.get("api_key", ""), credential.get("secrets", {})
    if (not isinstance(api_key, str) or not isinstance(secrets, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in secrets.items())):
        return None
    return Stored(raw["replaces"], api_key, secrets, "", stored_at)


def _fsync_directory(directory: Path) -> None:
    """Makes the rename durable; not every platform can open a directory, which is fine there."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
