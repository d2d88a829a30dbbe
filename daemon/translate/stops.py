"""Stop sequences, enforced on the text stream (pure).

The upstream reports a stop-sequence stop as a plain STOP and drops the sequence
(client-protocols.md §7.9), so clients could never learn which sequence matched. The
daemon therefore watches the text itself: it holds back just enough characters for a
sequence that straddles two upstream events, cuts the text before the first match and
ends the turn there (the runner then cancels the upstream request).
"""

from __future__ import annotations

from ..upstream.events import ModelEvent, TextDelta


class StopSequences:
    __slots__ = ("sequences", "_hold", "_pending", "matched")

    def __init__(self, sequences: tuple[str, ...]) -> None:
        self.sequences = tuple(s for s in sequences if s)
        self._hold = max((len(s) for s in self.sequences), default=1) - 1
        self._pending = ""
        self.matched: str | None = None

    def feed(self, events: list[ModelEvent]) -> list[ModelEvent]:
        """Events to pass on; after a match `matched` is set and nothing more passes."""
        out: list[ModelEvent] = []
        for event in events:
            if self.matched is not None:
                break
            if isinstance(event, TextDelta):
                self._text(self._pending + event.text, out)
            else:
                self._flush(out)  # a sequence cannot span a non-text event
                out.append(event)
        return out

    def _text(self, text: str, out: list[ModelEvent]) -> None:
        hits = [(index, seq) for seq in self.sequences if (index := text.find(seq)) >= 0]
        if hits:
            index, self.matched = min(hits)
            self._pending = ""
            if index:
                out.append(TextDelta(text[:index]))
            return
        cut = max(0, len(text) - self._hold)
        self._pending = text[cut:]
        if cut:
            out.append(TextDelta(text[:cut]))

    def _flush(self, out: list[ModelEvent]) -> None:
        if self._pending:
            out.append(TextDelta(self._pending))
            self._pending = ""
