"""Logins started from the admin page: the accounts layer's headless login (accounts/login.py),
split over two requests.

Starting one makes the consent URL (its own PKCE and state, no I/O) and the page shows it.
The person signs in on any machine, copies where the browser ended up (or just the code) and
posts it back; a task then exchanges the code, learns the e-mail, finds the Cloud Code project
and stores the account (a known e-mail is logged in again).

A login nobody answers within LOGIN_TIMEOUT is given up. Each task ends with an Outcome,
never an exception, and belongs to the App, which cancels it on close.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..accounts.login import Added, HeadlessLogin, Login, LoginError
from ..redact import mask_email, redact

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 600.0  # seconds from the URL being shown to the pasted answer
FINISH_WAIT = 90.0  # seconds a request waits for the code exchange, e-mail and project discovery
MAX_PENDING = 4  # logins open at once; starting another gives up the oldest


@dataclass(frozen=True, slots=True)
class Outcome:
    added: Added | None = None
    error: str = ""  # for the page: what went wrong, redacted

    @property
    def message(self) -> str:
        if self.added is None:
            return self.error
        account = self.added.account
        verb = "Added" if self.added.created else "Logged in again:"
        text = f"{verb} {mask_email(account.email)} (id {account.id}, project {account.project_id or '-'})"
        if account.state.value != "active":
            text += f"; it is {account.state.value}: {account.reason}"
        return text


@dataclass(frozen=True, slots=True)
class PendingLogin:
    id: str
    account_id: str  # the account a re-login is for, "" when adding one
    started_at: float
    login: Login
    begun: HeadlessLogin

    @property
    def url(self) -> str:
        """The Google consent URL to open."""
        return self.begun.url


class Logins:
    def __init__(self, make_login: Callable[[], Login], adopt: Callable[[asyncio.Task[Outcome]], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`make_login` builds the accounts layer's Login; `adopt` hands each task to its owner."""
        self._make_login = make_login
        self._adopt = adopt
        self._clock = clock
        self._pending: dict[str, PendingLogin] = {}

    def get(self, login_id: str) -> PendingLogin | None:
        """The open login with this id; None once it was answered, replaced or timed out."""
        pending = self._pending.get(login_id)
        if pending is not None and self._clock() - pending.started_at > LOGIN_TIMEOUT:
            del self._pending[login_id]
            return None
        return pending

    def start(self, account_id: str = "") -> PendingLogin:
        """A new login and its consent URL."""
        while len(self._pending) >= MAX_PENDING:
            oldest = min(self._pending.values(), key=lambda p: p.started_at)
            del self._pending[oldest.id]
        login = self._make_login()
        pending = PendingLogin(secrets.token_urlsafe(12), account_id, self._clock(), login, login.begin_headless())
        self._pending[pending.id] = pending
        return pending

    async def finish(self, login_id: str, pasted: str) -> Outcome | None:
        """Answer an open login with what was pasted and wait for it to end. None when it is
        still working after FINISH_WAIT (it carries on); LoginError when there is no such login."""
        pending = self.get(login_id)
        if pending is None:
            raise LoginError("this login is no longer open (it timed out, was replaced or already finished); "
                             "start a new one")
        del self._pending[login_id]  # one answer per login: a second paste needs a new one
        task = asyncio.get_running_loop().create_task(_run(pending, pasted))
        self._adopt(task)
        done, _ = await asyncio.wait({task}, timeout=FINISH_WAIT)
        return task.result() if done else None


async def _run(pending: PendingLogin, pasted: str) -> Outcome:
    try:
        added = await pending.login.finish_headless(pending.begun, pasted)
    except LoginError as exc:
        return Outcome(error=redact(str(exc)))
    except Exception as exc:  # anything else is a bug: logged, and the page says so
        log.exception("admin login failed")
        return Outcome(error=f"the login failed unexpectedly ({type(exc).__name__}); see the log")
    log.info("admin page: account %s %s", added.account.id, "added" if added.created else "logged in again")
    return Outcome(added=added)
