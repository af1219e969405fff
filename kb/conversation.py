"""One chat: the situation understood so far, carried from turn to turn.

The caller owns it (the web app keeps one per browser session, `kb ask` one per message); it holds
no message text, so keeping it in memory keeps nothing the user typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kb.situation import Situation


@dataclass
class Conversation:
    situation: Situation = field(default_factory=Situation)
    turns: int = 0

    def reset(self) -> None:
        self.situation = Situation()
        self.turns = 0

    @property
    def has_context(self) -> bool:
        """Whether an earlier turn already said something about the user's licence situation."""
        return self.situation != Situation()
