"""Thinking settings and output limits for one upstream request (pure).

client-protocols.md §7.8 and upstream doc §4.3/§4.6: Claude needs a numeric budget that
stays below maxOutputTokens; Gemini 3 takes a level, Gemini 2.5 a clamped budget; never
both a level and a budget; extended thinking on Claude forbids temperature≠1, top_k and
top_p<0.95.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..upstream import models
from ..upstream.catalog import MAX_OUTPUT

# Budgets for adaptive thinking by effort (decision recorded in client-protocols.md §7.8).
EFFORT_BUDGETS = {"minimal": 1024, "low": 4096, "medium": 16384, "high": 32000}
EFFORT_LEVELS = {"none": "low", "minimal": "low", "low": "low", "medium": "medium", "high": "high",
                 "xhigh": "high", "max": "high"}
MIN_CLAUDE_BUDGET = 1024
BUDGET_HEADROOM = 8192  # output room left beside a raised budget (ACP's choice)
GEMINI_25_BUDGET = {"gemini-2.5-flash": (0, 24576), "gemini-2.5-pro": (128, 32768)}


@dataclass(frozen=True, slots=True)
class ThinkingPlan:
    config: dict[str, Any] | None  # generationConfig.thinkingConfig, or None to send none
    max_output_tokens: int
    show_thoughts: bool  # the client asked to see thinking
    restrict_sampling: bool  # Claude extended thinking: drop temperature/top_k/low top_p


def plan(model: str, requested: str, budget: int | None, effort: str | None, max_tokens: int) -> ThinkingPlan:
    """`requested` is "enabled", "adaptive" or "disabled"; `budget` only for "enabled"."""
    family = models.family(model)
    cap = MAX_OUTPUT[family]
    max_out = max(1, min(max_tokens, cap))
    wanted = requested in ("enabled", "adaptive") and models.supports_thinking(model)
    if not wanted:
        return ThinkingPlan(_off(model), max_out, False, False)
    if family == "claude":
        if requested == "enabled" and budget:
            target = max(MIN_CLAUDE_BUDGET, budget)
        else:
            target = EFFORT_BUDGETS.get(effort or "high", cap - 1)
        if target >= max_out:  # the upstream refuses budget ≥ max: raise the max, then clamp
            max_out = min(target + BUDGET_HEADROOM, cap)
            target = min(target, max_out - 1)
        return ThinkingPlan({"includeThoughts": True, "thinkingBudget": target}, max_out, True, True)
    if models.is_gemini3(model):
        level = EFFORT_LEVELS.get(effort or "", "") or _level_for_budget(budget)
        if effort in ("none", "minimal") and _is_flash(model):
            level = "minimal"  # Flash has a lower level than Pro's "low" (client-protocols.md §7.8)
        return ThinkingPlan({"includeThoughts": True, "thinkingLevel": level}, max_out, True, False)
    low, high = GEMINI_25_BUDGET.get(model, (0, 24576))
    value = -1 if requested == "adaptive" or not budget else max(low, min(budget, high))
    return ThinkingPlan({"includeThoughts": True, "thinkingBudget": value}, max_out, True, False)


def _off(model: str) -> dict[str, Any] | None:
    if models.is_gemini3(model):  # Gemini 3 cannot switch thinking off: its lowest level
        return {"includeThoughts": False, "thinkingLevel": "minimal" if _is_flash(model) else "low"}
    return None


def _is_flash(model: str) -> bool:
    return "flash" in model


def _level_for_budget(budget: int | None) -> str:
    if budget is None:
        return "high"
    return "low" if budget <= 4096 else "medium" if budget <= 16384 else "high"
