"""Accounts from a YAML file, reloaded when the file changes.

Change detection is a cheap `os.stat` every few seconds (mtime, size, inode, so
an atomic rename or a Kubernetes ConfigMap symlink swap counts too). A file that
fails validation, or disappears, leaves the published pool untouched; the file
is read again only after it changes again.
"""

import asyncio
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from switchboard_router.accounts import Account
from switchboard_router.accounts_yaml import parse_accounts
from switchboard_router.errors import AccountsInvalid
from switchboard_router.store import Publish

log = logging.getLogger(__name__)

Signature = tuple[int, int, int]


class YamlFileSource:
    """`AccountSource` over one YAML file (format: `accounts_yaml`)."""

    def __init__(
        self, path: str | Path, *, interval_seconds: float = 2.0, environ: Mapping[str, str] | None = None
    ) -> None:
        self.path = Path(path)
        self.interval_seconds = interval_seconds
        self._environ = os.environ if environ is None else environ
        self._seen: Signature | None = None

    def _signature(self) -> Signature | None:
        try:
            st = self.path.stat()
        except OSError:  # missing, or not readable: both mean "nothing to load"
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> list[Account]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise AccountsInvalid(str(self.path), ["not UTF-8 text"]) from None
        return parse_accounts(text, source=str(self.path), environ=self._environ)

    def load(self) -> Sequence[Account]:
        """Reads the file now. A missing file is an empty pool (it is picked up once it
        appears); an invalid one raises `AccountsInvalid`."""
        self._seen = self._signature()
        try:
            return self._read()
        except FileNotFoundError:
            log.warning("accounts file %s does not exist; starting with no accounts", self.path)
            return []
        except OSError as exc:
            raise AccountsInvalid(str(self.path), [f"cannot read: {exc.strerror}"]) from None

    async def watch(self, publish: Publish) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            try:
                self.poll(publish)
            except Exception:  # a reload bug must not stop reloading for good
                log.exception("reloading accounts file %s failed; keeping the previous pool", self.path)

    def poll(self, publish: Publish) -> bool:
        """One change check; True when a new list was published."""
        signature = self._signature()
        if signature == self._seen:
            return False
        self._seen = signature
        if signature is None:
            log.warning("accounts file %s is missing or unreadable; keeping the previous pool", self.path)
            return False
        try:
            accounts = self._read()
        except AccountsInvalid as exc:
            for problem in exc.problems:
                log.error("accounts file %s: %s", self.path, problem)
            log.error("accounts file %s is invalid; keeping the previous pool", self.path)
            return False
        except OSError as exc:
            log.error("cannot read accounts file %s (%s); keeping the previous pool", self.path, exc.strerror)
            return False
        log.info("accounts file %s changed; reloading", self.path)
        publish(accounts)
        return True
