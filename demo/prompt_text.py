"""Prompt composition shared by the task generators: English joins, contexts, review picks."""
from __future__ import annotations

import random

MAX_CONTEXT = 700


def join_and(items: list[str]) -> str:
    """Join phrases as English; clauses that contain commas are separated by semicolons."""
    if len(items) == 1:
        return items[0]
    if any("," in item for item in items):
        return "; ".join(items[:-1]) + f"; and {items[-1]}"
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def cap(text: str) -> str:
    return text[0].upper() + text[1:]


def the(names: list[str]) -> str:
    return join_and([f"the {n}" for n in names])


def which(p: dict, name: str) -> str:
    return f"the {name}, which {p['by_name'][name]['gist']}"


def clause(p: dict, name: str) -> str:
    return f"the {name} {p['by_name'][name]['gist']}"


def single_context(p: dict, r: dict) -> str:
    return f"Product: {p['name']}\nReview: {r['text']}"


def multi_context(p: dict, reviews: list[dict]) -> str:
    lines = [f"Product: {p['name']}"]
    for i, r in enumerate(reviews, 1):
        lines.append(f"Review {i} ({r['rating']}/5 stars): {r['text']}")
    return "\n".join(lines)


def mentions_in(reviews: list[dict]) -> list[dict]:
    """Distinct feature mentions in reading order, with how many reviews mention each."""
    seen: dict[str, dict] = {}
    for r in reviews:
        for m in r["mentions"]:
            entry = seen.setdefault(
                m["feature"], {"feature": m["feature"], "polarity": m["polarity"], "count": 0}
            )
            entry["count"] += 1
    return list(seen.values())


def pick_reviews(p: dict, must: list[dict], rng: random.Random, want: int) -> list[dict] | None:
    """`must` reviews plus random others up to `want`, within MAX_CONTEXT."""
    chosen = list(must)
    others = [r for r in p["reviews"] if r not in chosen]
    rng.shuffle(others)
    for r in others:
        if len(chosen) >= want:
            break
        if len(multi_context(p, chosen + [r])) <= MAX_CONTEXT:
            chosen.append(r)
    if len(multi_context(p, chosen)) > MAX_CONTEXT:
        return None
    rng.shuffle(chosen)
    return chosen
