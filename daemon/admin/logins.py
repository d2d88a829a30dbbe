"""Logins started from the admin page: the accounts layer's headless login (accounts/login.py),
split over two requests.

Starting one runs `Login.headless()` in a task: it makes the consent URL (its own PKCE and
state) and then waits for the line a person would paste. The page shows the URL; the person
signs in on any machine, copies where the browser ended up (or just the code) and posts it
back, which becomes that line; the task then exchanges the code, learns the e-mail, finds
the Cloud Code project and stores the account (a known e-mail is logged in again).

A login nobody finishes gives up after LOGIN_TIMEOUT. Each task ends with an Outcome,
never an exception, and belongs to the App, which cancels it on close.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..accounts.login import Added, Login, LoginError
from ..redact import mask_email, redact

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 600.0  # seconds from the URL being shown to the pasted answer
FINISH_WAIT = 90.0  # seconds a request waits for the code exchange, e-mail and project discovery
URL_WAIT = 10.0  # seconds for the login to show its URL (it makes it without any I/O)
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


@dataclass(slots=True)
class PendingLogin:
    id: str
    url: str  # the Google consent URL to open
    account_id: str  # the account a re-login is for, "" when adding one
    started_at: float
    answer: asyncio.Future[str]
    task: asyncio.Task[Outcome] = field(repr=False)

    @property
    def finished(self) -> bool:
        return self.task.done()


class Logins:
    def __init__(self, make_login: Callable[[], Login], auth_url: Callable[[], str],
                 adopt: Callable[[asyncio.Task[Outcome]], None]) -> None:
        """`make_login` builds the accounts layer's Login; `auth_url` is the consent endpoint
        (how the URL is found in what the login says); `adopt` hands each task to its owner."""
        self._make_login = make_login
        self._auth_url = auth_url
        self._adopt = adopt
        self._pending: dict[str, PendingLogin] = {}

    def get(self, login_id: str) -> PendingLogin | None:
        pending = self._pending.get(login_id)
        if pending is not None and pending.finished and not pending.answer.done():
            del self._pending[login_id]  # gave up (timeout, cancelled) before anyone answered
            return None
        return pending

    async def start(self, account_id: str = "") -> PendingLogin:
        """A new login and its consent URL; LoginError when the URL cannot be had."""
        while len(self._pending) >= MAX_PENDING:
            oldest = min(self._pending.values(), key=lambda p: p.started_at)
            oldest.task.cancel()
            del self._pending[oldest.id]
        loop = asyncio.get_running_loop()
        shown: asyncio.Future[str] = loop.create_future()
        answer: asyncio.Future[str] = loop.create_future()
        prefix = self._auth_url()

        def say(text: str) -> None:  # the login says the URL once, before it waits for the answer
            url = next((word for word in text.split() if word.startswith(prefix)), None)
            if shown.done():
                return
            if url is None:
                shown.set_exception(LoginError("the login did not show a sign-in URL"))
            else:
                shown.set_result(url)

        async def read_line() -> str:
            return await asyncio.wait_for(asyncio.shield(answer), LOGIN_TIMEOUT)

        task = loop.create_task(_run(self._make_login(), read_line, say))
        self._adopt(task)
        await asyncio.wait({task, shown}, timeout=URL_WAIT, return_when=asyncio.FIRST_COMPLETED)
        if not shown.done() or shown.exception() is not None:
            task.cancel()
            failure = shown.exception() if shown.done() else None
            error = task.result().error if task.done() and not task.cancelled() else ""
            raise LoginError(error or str(failure or "the login did not show a sign-in URL"))
        pending = PendingLogin(secrets.token_urlsafe(12), shown.result(), account_id, time.monotonic(), answer, task)
        self._pending[pending.id] = pending
        return pending

    async def finish(self, login_id: str, pasted: str) -> Outcome | None:
        """Answer a pending login with what was pasted and wait for it to end. None when it is
        still working after FINISH_WAIT (it carries on); LoginError when there is no such login."""
        pending = self.get(login_id)
        if pending is None:
            raise LoginError("this login is no longer open (it timed out, was replaced or already finished); "
                             "start a new one")
        if pending.answer.done():
            raise LoginError("this login was already answered; start a new one to try again")
        pending.answer.set_result(pasted)
        done, _ = await asyncio.wait({pending.task}, timeout=FINISH_WAIT)
        self._pending.pop(login_id, None)
        return pending.task.result() if done else None


async def _run(login: Login, read_line: Callable[[], Awaitable[str]], say: Callable[[str], None]) -> Outcome:
    try:
        added = await login.headless(read_line=read_line, say=say)
    except LoginError as exc:
        return Outcome(error=redact(str(exc)))
    except TimeoutError:
        return Outcome(error=f"nothing was pasted within {LOGIN_TIMEOUT:g} s; start a new login")
    except Exception as exc:  # anything else is a bug: logged, and the page says so
        log.exception("admin login failed")
        return Outcome(error=f"the login failed unexpectedly ({type(exc).__name__}); see the log")
    log.info("admin page: account %s %s", added.account.id, "added" if added.created else "logged in again")
    return Outcome(added=added)
