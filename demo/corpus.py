"""The demo corpus: parsing ``corpus.txt`` and composing each product's reviews.

``corpus.txt`` (next to this module) is written by hand, in this format:

    ## Product name | category | split
    +/- feature phrase | what reviewers say (verb phrase whose subject is "the <feature>") | a need
        review sentence about the feature (contains the feature phrase)
        another review sentence about the feature (contains the feature phrase)

"+" marks a strength (reviewers praise it), "-" a weakness (reviewers criticise it). Blank lines are
ignored.
"""
from __future__ import annotations

import random
from pathlib import Path

CORPUS_PATH = Path(__file__).resolve().parent / "corpus.txt"

OPENERS = {
    "any": [
        "I've been using it for about three weeks now.",
        "Bought this after my old one finally gave up.",
        "I ordered this after reading a lot of reviews.",
        "We've had it for a couple of months.",
        "I picked this up on sale last month.",
        "Got this as a birthday present.",
    ],
    "electronics": ["I've used it every day for about a month.", "Upgraded to this from a cheaper model."],
    "kitchen": ["I use it almost every day in our small kitchen.", "Bought this to replace an old one."],
    "outdoor": ["Took it on a three-day trip in the mountains.", "I've used it on several weekend trips."],
    "home": ["We've had it at home for a few weeks.", "Bought this for our new apartment."],
    "personal care": ["I've been using it every morning for a month.",
                      "Switched to this from my usual brand."],
    "toys": ["Bought this for my son's birthday.", "Got this for my niece and nephew."],
    "fitness": ["I've trained with it for about six weeks.", "Bought this for my home workouts."],
}
CLOSERS = {
    5: ["Would buy it again without hesitation.", "Highly recommend.", "Five stars from me.",
        "Really happy with this purchase.", "Best purchase I've made this year."],
    "pos": ["Really happy with it overall.", "Would recommend it.", "Great value overall."],
    4: ["Still a very good buy overall.", "Four stars, and I'd still recommend it.",
        "Overall I'm happy with it."],
    3: ["It's okay, just not amazing.", "Decent, but I expected a bit more.",
        "Three stars: some good, some bad.", "Average overall for the price."],
    "neg": ["I'm sending it back.", "Would not buy again.", "Really disappointed.",
            "Save your money.", "Not worth the price."],
}
CONNECT = {
    "con": ["That said, ", "However, ", "On the downside, "],
    "pro": ["To be fair, ", "On the plus side, "],
}


# ---------------------------------------------------------------------------------------------
# Corpus parsing and review composition
# ---------------------------------------------------------------------------------------------
def parse_corpus(text: str) -> list[dict]:
    products: list[dict] = []
    feature = None
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip():
            continue
        if line.startswith("## "):
            name, category, split = (part.strip() for part in line[3:].split("|"))
            products.append({"name": name, "category": category, "split": split, "features": []})
        elif line[0] in "+-":
            phrase, gist, need = (part.strip() for part in line[1:].split("|"))
            feature = {"name": phrase, "strength": line[0] == "+", "gist": gist, "need": need,
                       "sentences": []}
            products[-1]["features"].append(feature)
        else:
            sentence = line.strip()
            if phrase_key(feature["name"]) not in sentence.lower():
                raise SystemExit(f"corpus: feature {feature['name']!r} missing from {sentence!r}")
            feature["sentences"].append(sentence)
    for p in products:
        if not 3 <= len(p["features"]) <= 5:
            raise SystemExit(f"corpus: {p['name']} has {len(p['features'])} features")
        for f in p["features"]:
            if len(f["sentences"]) < 2:
                raise SystemExit(f"corpus: {p['name']} / {f['name']} needs two sentences")
    return products


def phrase_key(name: str) -> str:
    return name.lower()


def lower_first(sentence: str) -> str:
    first = sentence.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or (len(first) > 1 and first[1].isupper()):
        return sentence
    return sentence[0].lower() + sentence[1:]


# (positive mentions, negative mentions) -> star rating; None = random choice
PLANS = {
    "pos": [(2, 0), (1, 0), (2, 1), (2, 0)],
    "neu": [(1, 1)],
    "neg": [(0, 2), (0, 1), (1, 2), (0, 2)],
}


def rating_for(plan: tuple[int, int], rng: random.Random) -> int:
    pos, neg = plan
    if neg == 0:
        return 5 if pos >= 2 else rng.choice([4, 5])
    if pos == 0:
        return 1 if neg >= 2 else rng.choice([1, 2])
    if pos > neg:
        return 4
    if pos == neg:
        return 3
    return 2


def make_reviews(product: dict, rng: random.Random) -> list[dict]:
    pools = {id(f): list(f["sentences"]) for f in product["features"]}
    for f in product["features"]:
        rng.shuffle(pools[id(f)])
    strengths = [f for f in product["features"] if f["strength"]]
    weaknesses = [f for f in product["features"] if not f["strength"]]
    ratio = len(strengths) / len(product["features"])
    target = rng.choice([4, 5, 5, 6])

    def pick(candidates: list[dict], k: int) -> list[dict] | None:
        available = [f for f in candidates if pools[id(f)]]
        if len(available) < k:
            return None
        rng.shuffle(available)
        available.sort(key=lambda f: -len(pools[id(f)]))  # stable: prefer unused features
        return available[:k]

    reviews: list[dict] = []
    attempts = 0
    while len(reviews) < target and attempts < 60:
        attempts += 1
        weights = {"pos": ratio, "neg": 1 - ratio, "neu": 0.3 if strengths and weaknesses else 0}
        kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        plan = rng.choice(PLANS[kind])
        pos_f = pick(strengths, plan[0])
        neg_f = pick(weaknesses, plan[1])
        if pos_f is None or neg_f is None:
            continue
        rating = rating_for(plan, rng)
        # Compose the body; connectors attach the minority polarity.
        if kind == "neu":
            if rng.random() < 0.5:
                parts = [(pos_f[0], None), (neg_f[0], rng.choice(CONNECT["con"]))]
            else:
                parts = [(neg_f[0], None), (pos_f[0], rng.choice(CONNECT["pro"]))]
        elif rating >= 4:
            parts = [(f, None) for f in pos_f]
            parts += [(f, rng.choice(CONNECT["con"])) for f in neg_f]
        else:
            parts = [(f, None) for f in neg_f]
            parts += [(f, rng.choice(CONNECT["pro"])) for f in pos_f]
        sentences, mentions = [], []
        for f, prefix in parts:
            s = pools[id(f)].pop()
            sentences.append(prefix + lower_first(s) if prefix else s)
            mentions.append({"feature": f["name"], "polarity": "positive" if f["strength"] else "negative"})
        if len(sentences) <= 2 and rng.random() < 0.75:
            cat = product["category"]
            sentences.insert(0, rng.choice(OPENERS["any"] + OPENERS[cat] * 2))
        if rating == 5:
            closer = rng.choice(CLOSERS[5])
        elif rating == 4:
            closer = rng.choice(CLOSERS[4] if plan[1] else CLOSERS["pos"])
        elif rating == 3:
            closer = rng.choice(CLOSERS[3])
        else:
            closer = rng.choice(CLOSERS["neg"])
        sentences.append(closer)
        reviews.append({"rating": rating, "text": " ".join(sentences), "mentions": mentions})
    if len(reviews) < 4:
        raise SystemExit(f"corpus: only {len(reviews)} reviews could be made for {product['name']}")
    return reviews


def build_corpus(rng: random.Random) -> list[dict]:
    products = parse_corpus(CORPUS_PATH.read_text(encoding="utf-8"))
    for i, p in enumerate(products, 1):
        p["product_id"] = f"p{i:02d}"
        p["reviews"] = make_reviews(p, rng)
        for j, r in enumerate(p["reviews"], 1):
            r["review_id"] = f"{p['product_id']}-r{j}"
        p["by_name"] = {f["name"]: f for f in p["features"]}
    return products


def product_row(p: dict) -> dict:
    return {
        "product_id": p["product_id"],
        "name": p["name"],
        "category": p["category"],
        "split": p["split"],
        "features": [f["name"] for f in p["features"]],
        "feature_verdicts": [
            {"feature": f["name"], "verdict": "strength" if f["strength"] else "weakness",
             "summary": f"The {f['name']} {f['gist']}."}
            for f in p["features"]
        ],
        "reviews": [
            {"review_id": r["review_id"], "rating": r["rating"], "text": r["text"],
             "mentions": r["mentions"]}
            for r in p["reviews"]
        ],
    }
