"""Identity leaks: answers that name a model, a vendor or their training, which would unblind a rater."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from reports.statistics.common import ROLES

# (name, regex, literals) — regexes matched case-insensitively, whole words. A hit is a flag for a
# researcher to read, not a verdict: "Google" in an answer about search engines is a false positive
# by design, since a blinded rater who reads "I am ChatGPT" is no longer blind. `literals` are
# lower-case strings of which every match of the regex contains at least one; they let most answers
# be cleared with plain substring tests, which cost far less than the regex.
IDENTITY_PATTERNS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "as_an_ai",
        r"\bas an? (?:ai|artificial intelligence)\b(?: (?:language )?(?:model|assistant))?",
        ("as an ai", "as a ai", "as an artificial", "as a artificial"),
    ),
    ("language_model", r"\b(?:large )?language models?\b|\bLLMs?\b", ("language model", "llm")),
    ("ai_assistant", r"\bAI (?:assistant|model|chatbot)\b", ("ai assistant", "ai model", "ai chatbot")),
    (
        "developed_by",
        r"\b(?:developed|trained|created|built) by\b",
        ("developed by", "trained by", "created by", "built by"),
    ),
    ("fine_tuned", r"\bfine[- ]?tun(?:ed|ing)\b", ("fine-tun", "fine tun", "finetun")),
    ("openai", r"\bOpen ?AI\b", ("openai", "open ai")),
    ("chatgpt", r"\bChat ?GPT\b|\bGPT-?\d(?:\.\d)?\b", ("gpt",)),
    ("smollm", r"\bSmolLM\d*\b", ("smollm",)),
    ("hugging_face", r"\bHugging ?Face\b", ("huggingface", "hugging face")),
    ("llama", r"\b(?:Tiny)?Llama\b", ("llama",)),
    ("anthropic", r"\bAnthropic\b|\bClaude\b", ("anthropic", "claude")),
    ("google", r"\bGoogle\b|\bGemini\b|\bBard\b|\bDeepMind\b", ("google", "gemini", "bard", "deepmind")),
    ("other_vendor", r"\bMistral\b|\bQwen\b|\bMeta AI\b", ("mistral", "qwen", "meta ai")),
)
IDENTITY_REGEX = re.compile(
    "|".join(f"(?P<{name}>{pattern})" for name, pattern, _ in IDENTITY_PATTERNS), re.IGNORECASE
)
IDENTITY_LITERALS = tuple(sorted({lit for _, _, lits in IDENTITY_PATTERNS for lit in lits}))


def find_identity_leak(text: str) -> re.Match[str] | None:
    """The first identity phrase in ``text`` (text order), or None."""
    low = text.lower()
    if not any(lit in low for lit in IDENTITY_LITERALS):
        return None
    return IDENTITY_REGEX.search(text)


MAX_LISTED_LEAKS = 500


def identity_leaks(answers: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """``answers``: (prompt external_id, role, text). Flags each answer whose text matches
    IDENTITY_REGEX; the first match (in text order) is reported as the phrase."""
    counts = {role: 0 for role in ROLES}
    checked = {role: 0 for role in ROLES}
    flagged: list[dict[str, str]] = []
    for external_id, role, text in answers:
        checked[role] = checked.get(role, 0) + 1
        found = find_identity_leak(text or "")
        if found is None:
            continue
        counts[role] = counts.get(role, 0) + 1
        flagged.append(
            {"prompt": external_id, "role": role, "phrase": found.group(0), "pattern": found.lastgroup or ""}
        )
    flagged.sort(key=lambda f: (f["prompt"], f["role"]))
    return {
        "count": counts,
        "n_checked": checked,
        "n_flagged": len(flagged),
        "flagged": flagged[:MAX_LISTED_LEAKS],
        "truncated": len(flagged) > MAX_LISTED_LEAKS,
        "patterns": [{"name": name, "regex": pattern} for name, pattern, _ in IDENTITY_PATTERNS],
        "method": "each answer of the campaign's pairs is searched (any case, whole words) for the patterns "
        "listed; the first match is shown; a flag is for a researcher to read, not a verdict",
    }
