"""Write-side flow control: writers wait while the transport's buffer is above its high-water mark."""

from __future__ import annotations

import asyncio


class FlowControl:
    """Fed by the protocol's pause_writing/resume_writing; awaited by writers."""

    __slots__ = ("_writable",)

    def __init__(self) -> None:
        self._writable = asyncio.Event()
        self._writable.set()

    @property
    def write_paused(self) -> bool:
        return not self._writable.is_set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        # Also called when the connection is lost, so a waiting writer wakes and notices.
        self._writable.set()

    async def drain(self) -> None:
        await self._writable.wait()
