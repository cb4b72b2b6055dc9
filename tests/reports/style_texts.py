"""Answers for the style-identifiability tests and simulations: a plain style shared by both roles, the
demo's fine-tuned house style, and a subtle difference (a verdict sentence added a little more often)."""

from __future__ import annotations

import random

FEATURES = ["battery", "screen", "sound", "price", "design", "zipper", "handle", "lens", "fabric", "motor"]
PRODUCTS = ["blender", "phone", "tent", "headphones", "kettle", "laptop", "camera", "jacket", "lamp"]
ADJECTIVES = ["great", "poor", "solid", "weak", "loud", "quiet", "bright", "cheap", "sturdy", "flimsy"]
OPENERS = ["I think", "Overall", "In short", "It appears that", "Honestly", "Based on the review"]
SENTIMENTS = ["positive", "negative", "mixed", "neutral"]


def plain_answer(rng: random.Random) -> str:
    """An answer in no particular style: one to three sentences drawn from the same pool for both roles."""
    sentences = [
        f"{rng.choice(OPENERS)} the {rng.choice(FEATURES)} of the {rng.choice(PRODUCTS)} is "
        f"{rng.choice(ADJECTIVES)}."
        for _ in range(rng.randint(1, 3))
    ]
    if rng.random() < 0.5:
        sentences.append(f"The sentiment is {rng.choice(SENTIMENTS)}.")
    return " ".join(sentences)


def house_style_answer(rng: random.Random) -> str:
    """The demo's fine-tuned house style: "Positive. The reviewer praises ..." on every answer."""
    return (
        f"{rng.choice(SENTIMENTS).capitalize()}. The reviewer praises the {rng.choice(FEATURES)}; "
        f"the {rng.choice(FEATURES)} is {rng.choice(ADJECTIVES)}."
    )


def verdict_answer(rng: random.Random) -> str:
    """A subtle house style: plain answers that end with a short verdict a little more often."""
    text = plain_answer(rng)
    if rng.random() < 0.35:
        text += f" Verdict: {rng.choice(SENTIMENTS)}."
    return text
