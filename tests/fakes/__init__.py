"""Test fakes. `FakeUpstream` plays Google's Antigravity Cloud Code API + OAuth on loopback;
`scripts` builds the replies it sends. See tests/fakes/README.md."""

from . import scripts
from .accounts import ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET, IDE_CLIENT_ID, IDE_CLIENT_SECRET, FakeAccount
from .oauth import SCOPE, SCOPES
from .records import Headers, RecordedRequest
from .upstream import FakeUpstream

__all__ = [
    "ANTIGRAVITY_CLIENT_ID",
    "ANTIGRAVITY_CLIENT_SECRET",
    "IDE_CLIENT_ID",
    "IDE_CLIENT_SECRET",
    "SCOPE",
    "SCOPES",
    "FakeAccount",
    "FakeUpstream",
    "Headers",
    "RecordedRequest",
    "scripts",
]
