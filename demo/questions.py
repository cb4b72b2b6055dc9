"""The per-task prompt generators: sentiment, features, recommendation and relevance.

Each ``gen_<task>(products, n, rng)`` returns ``n`` prompt rows (task, text, context, reference,
label) drawn from the given products' reviews; the label conventions are in ``build_data.py``.
"""
from __future__ import annotations

import random

from prompt_text import (
    MAX_CONTEXT,
    clause,
    join_and,
    mentions_in,
    multi_context,
    pick_reviews,
    single_context,
    the,
    which,
)


def sentiment_of(r: dict) -> str:
    return "positive" if r["rating"] >= 4 else "negative" if r["rating"] <= 2 else "neutral"


SENT_TEXTS = [
    "What is the sentiment of this review? Answer positive, negative or neutral.",
    "Classify the sentiment of the review below as positive, negative or neutral.",
    "Is this customer review positive, negative or neutral?",
    "Read the review and tell me whether the customer's sentiment is positive, negative or neutral.",
    "What is the overall tone of this review: positive, negative or neutral?",
]


def sentiment_reference(r: dict) -> str:
    pos = [m["feature"] for m in r["mentions"] if m["polarity"] == "positive"]
    neg = [m["feature"] for m in r["mentions"] if m["polarity"] == "negative"]
    label = sentiment_of(r)
    if label == "positive":
        if neg:
            return f"Positive. The reviewer praises {the(pos)}; {the(neg)} is only a minor complaint."
        if len(pos) == 1:
            return f"Positive. The reviewer praises {the(pos)} and is happy with the purchase."
        return f"Positive. The reviewer praises {the(pos)}."
    if label == "negative":
        if pos:
            return f"Negative. The reviewer complains about {the(neg)}; {the(pos)} is the only positive."
        if len(neg) == 1:
            return f"Negative. The reviewer complains about {the(neg)} and is unhappy with the purchase."
        return f"Negative. The reviewer complains about {the(neg)}."
    return (f"Neutral. The reviewer likes {the(pos)} but is disappointed by {the(neg)}, "
            "so the review is mixed.")


def gen_sentiment(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    buckets: dict[str, list] = {"positive": [], "negative": [], "neutral": []}
    for p in products:
        for r in p["reviews"]:
            buckets[sentiment_of(r)].append((p, r))
    quota = {"positive": round(n * 0.4), "negative": round(n * 0.4)}
    quota["neutral"] = n - quota["positive"] - quota["negative"]
    chosen = []
    for label in ("positive", "negative", "neutral"):
        pool = buckets[label][:]
        rng.shuffle(pool)
        chosen += pool[: quota[label]]
    # top up from the largest buckets if one was short
    short = n - len(chosen)
    if short:
        used = {id(r) for _, r in chosen}
        rest = [(p, r) for lbl in ("negative", "positive", "neutral") for p, r in buckets[lbl]
                if id(r) not in used]
        rng.shuffle(rest)
        chosen += rest[:short]
    rng.shuffle(chosen)
    rows = []
    for p, r in chosen:
        rows.append({
            "task": "sentiment",
            "text": rng.choice(SENT_TEXTS),
            "context": single_context(p, r),
            "reference": sentiment_reference(r),
            "label": sentiment_of(r),
        })
    return rows


FEAT_LIST = [
    "Which product features does the reviewer mention?",
    "List the features mentioned in this review.",
    "What aspects of the product does this review talk about?",
]
FEAT_ABOUT = ["What does the reviewer say about the {f}?", "How does the reviewer describe the {f}?"]
FEAT_COMPLAIN = ["What does the reviewer complain about?", "Which feature is the reviewer unhappy with?"]
FEAT_LIKE = ["What does the reviewer like about the product?", "Which feature does the reviewer praise?"]
FEAT_TWO = ["Which features do these two reviewers mention?", "List the features each reviewer mentions."]
FEAT_BOTH = ["What do both reviewers say about the {f}?"]


def opinion(p: dict, name: str, subject: str = "The reviewer") -> str:
    f = p["by_name"][name]
    verb = "praises" if f["strength"] else "is unhappy with"
    if subject.startswith("Both"):
        verb = "praise" if f["strength"] else "are unhappy with"
    return f"{subject} {verb} {which(p, name)}."


def feature_candidates(p: dict, kind: str, rng: random.Random) -> list[dict]:
    out = []
    reviews = p["reviews"]
    for r in reviews:
        names = [m["feature"] for m in r["mentions"]]
        pos = [m["feature"] for m in r["mentions"] if m["polarity"] == "positive"]
        neg = [m["feature"] for m in r["mentions"] if m["polarity"] == "negative"]
        ctx = single_context(p, r)
        if kind == "list" and len(names) >= 2:
            ref = f"The reviewer mentions {the(names)}."
            if pos and neg:
                ref += f" They praise {the(pos)} but criticise {the(neg)}."
            elif pos:
                ref += f" They praise {'both' if len(pos) == 2 else 'all of them'}."
            else:
                ref += f" They criticise {'both' if len(neg) == 2 else 'all of them'}."
            out.append({"text": rng.choice(FEAT_LIST), "context": ctx, "reference": ref, "label": names[0]})
        if kind == "about":
            for n in names:
                out.append({"text": rng.choice(FEAT_ABOUT).format(f=n), "context": ctx,
                            "reference": opinion(p, n), "label": n})
        if kind == "complain" and neg:
            if len(neg) == 1:
                ref = f"The reviewer complains about {which(p, neg[0])}."
            else:
                ref = f"The reviewer complains about {the(neg)}: {join_and([clause(p, n) for n in neg])}."
            out.append({"text": rng.choice(FEAT_COMPLAIN), "context": ctx, "reference": ref, "label": neg[0]})
        if kind == "like" and pos:
            if len(pos) == 1:
                ref = f"The reviewer praises {which(p, pos[0])}."
            else:
                ref = f"The reviewer praises {the(pos)}: {join_and([clause(p, n) for n in pos])}."
            out.append({"text": rng.choice(FEAT_LIKE), "context": ctx, "reference": ref, "label": pos[0]})
    if kind in ("two", "both"):
        for i in range(len(reviews)):
            for j in range(i + 1, len(reviews)):
                a, b = reviews[i], reviews[j]
                ctx = multi_context(p, [a, b])
                if len(ctx) > MAX_CONTEXT:
                    continue
                na = [m["feature"] for m in a["mentions"]]
                nb = [m["feature"] for m in b["mentions"]]
                shared = [n for n in na if n in nb]
                if kind == "two" and not shared:
                    ref = (f"The first reviewer mentions {the(na)}; the second reviewer mentions {the(nb)}.")
                    out.append({"text": rng.choice(FEAT_TWO), "context": ctx, "reference": ref,
                                "label": na[0]})
                if kind == "both" and shared:
                    n = shared[0]
                    out.append({"text": FEAT_BOTH[0].format(f=n), "context": ctx,
                                "reference": opinion(p, n, "Both reviewers"), "label": n})
    return out


FEATURE_MIX = {"list": 0.24, "about": 0.24, "complain": 0.2, "like": 0.16, "two": 0.08, "both": 0.08}


def gen_features(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    counts = {k: max(1, round(n * w)) for k, w in FEATURE_MIX.items()}
    diff = n - sum(counts.values())
    counts["about"] += diff
    rows = []
    for kind, k in counts.items():
        pool = [c for p in products for c in feature_candidates(p, kind, rng)]
        rng.shuffle(pool)
        rows += pool[:k]
        if len(pool) < k:
            raise SystemExit(f"features/{kind}: only {len(pool)} candidates for {k}")
    rng.shuffle(rows)
    return [{"task": "features", **r} for r in rows]


REC_TEXTS = [
    (
        "Based on these reviews, would you recommend the {name} to someone who needs {need}? "
        "Answer yes or no and explain."
    ),
    "I'm looking for {need}. Based on these reviews, should I buy the {name}? Answer yes or no and explain.",
    "Would the {name} be a good choice for someone who needs {need}? Answer yes or no based on the reviews.",
]


def gen_recommendation(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    cands = {"yes": [], "no": []}
    for p in products:
        for f in p["features"]:
            mentioning = [r for r in p["reviews"] if any(m["feature"] == f["name"] for m in r["mentions"])]
            if not mentioning:
                continue
            cands["yes" if f["strength"] else "no"].append((p, f, mentioning))
    quota = {"yes": n // 2, "no": n - n // 2}
    rows = []
    for label in ("yes", "no"):
        pool = cands[label][:]
        rng.shuffle(pool)
        made = 0
        for p, f, mentioning in pool:
            if made >= quota[label]:
                break
            must = mentioning[:2]
            reviews = pick_reviews(p, must, rng, want=rng.choice([2, 3]))
            if reviews is None:
                reviews = pick_reviews(p, must[:1], rng, want=2)
            if reviews is None or len(reviews) < 2:
                continue
            ctx_mentions = mentions_in(reviews)
            count = next(m["count"] for m in ctx_mentions if m["feature"] == f["name"])
            who = "Reviewers say" if count > 1 else "One reviewer says"
            if label == "yes":
                ref = (f"Yes. {who} the {f['name']} {f['gist']}. That makes it a good fit for someone "
                       f"who needs {f['need']}.")
                cons = [m["feature"] for m in ctx_mentions if m["polarity"] == "negative"]
                if cons:
                    ref += (f" The main drawback mentioned is that the {cons[0]} "
                            f"{p['by_name'][cons[0]]['gist']}.")
            else:
                ref = (f"No. {who} the {f['name']} {f['gist']}. That makes it a poor fit for someone "
                       f"who needs {f['need']}.")
                pros = [m["feature"] for m in ctx_mentions if m["polarity"] == "positive"]
                if pros:
                    ref += f" Reviewers do praise the {pros[0]}, but that does not make up for it."
            rows.append({
                "task": "recommendation",
                "text": rng.choice(REC_TEXTS).format(name=p["name"], need=f["need"]),
                "context": multi_context(p, reviews),
                "reference": ref,
                "label": label,
            })
            made += 1
        if made < quota[label]:
            raise SystemExit(f"recommendation/{label}: only {made} of {quota[label]}")
    rng.shuffle(rows)
    return rows


def relevance_candidate(p: dict, kind: str, rng: random.Random) -> dict | None:
    name = p["name"]
    if kind == "about":
        feats = [f for f in p["features"]
                 if any(m["feature"] == f["name"] for r in p["reviews"] for m in r["mentions"])]
        f = rng.choice(feats)
        must = [r for r in p["reviews"] if any(m["feature"] == f["name"] for m in r["mentions"])][:2]
        reviews = pick_reviews(p, must, rng, want=3)
        if reviews is None:
            return None
        count = next(m["count"] for m in mentions_in(reviews) if m["feature"] == f["name"])
        subject = "Both reviewers who mention it" if count == 2 else "One reviewer"
        verb = ("praise" if count == 2 else "praises") if f["strength"] else (
            "are unhappy with" if count == 2 else "is unhappy with")
        others = [m["feature"] for m in mentions_in(reviews) if m["feature"] != f["name"]]
        ref = f"{subject} {verb} {which(p, f['name'])}."
        if others:
            ref += f" The other reviews focus on {the(others[:2])} instead."
        text = rng.choice([f"What do buyers say about the {f['name']} of the {name}?",
                           f"How do customers rate the {f['name']} of the {name}?"])
        return {"text": text, "context": multi_context(p, reviews), "reference": ref, "label": ""}
    reviews = pick_reviews(p, [], rng, want=3)
    if reviews is None:
        return None
    ms = mentions_in(reviews)
    pos = [m["feature"] for m in ms if m["polarity"] == "positive"]
    neg = [m["feature"] for m in ms if m["polarity"] == "negative"]
    if kind == "complaints":
        if not neg:
            return None
        if len(neg) == 1:
            ref = f"The main complaint is that {clause(p, neg[0])}."
        else:
            ref = f"The main complaints are that {join_and([clause(p, n) for n in neg[:3]])}."
        if pos:
            ref += f" Reviewers are happier with {the(pos[:2])}."
        text = rng.choice([f"Summarise the main complaints about the {name}.",
                           f"What problems do buyers report with the {name}?"])
    elif kind == "likes":
        if not pos:
            return None
        if len(pos) == 1:
            ref = f"Reviewers like {which(p, pos[0])}."
        else:
            ref = f"Reviewers like {the(pos[:3])}: {join_and([clause(p, n) for n in pos[:3]])}."
        if neg:
            ref += f" The main criticism is that {clause(p, neg[0])}."
        text = rng.choice([f"What do reviewers like most about the {name}?",
                           f"What are the strongest points of the {name} according to buyers?"])
    elif kind == "proscons":
        if not pos or not neg:
            return None
        ref = (f"Pros: {join_and([clause(p, n) for n in pos[:3]])}. "
               f"Cons: {join_and([clause(p, n) for n in neg[:3]])}.")
        text = f"What are the pros and cons of the {name} according to these reviews?"
    elif kind == "summary":
        avg = sum(r["rating"] for r in reviews) / len(reviews)
        tone = ("Customers are mostly positive" if avg >= 3.5 else
                "Customers are mostly negative" if avg <= 2.5 else "Opinions are mixed")
        ref = f"{tone} (average {avg:.1f}/5 across these reviews)."
        if pos:
            ref += f" Reviewers praise {the(pos[:3])}."
        if neg:
            ref += f" The main complaint is that {clause(p, neg[0])}."
        text = rng.choice([f"Summarise what customers think of the {name}.",
                           f"Give a short overview of the reviews for the {name}."])
    elif kind == "verdict":
        f = rng.choice([p["by_name"][m] for m in pos + neg] or [None])
        if f is None:
            return None
        word = "A strength" if f["strength"] else "A weakness"
        ref = f"{word}: reviewers say {clause(p, f['name'])}."
        text = f"Is the {f['name']} a strength or a weakness of the {name}, according to its reviews?"
    else:
        raise ValueError(kind)
    return {"text": text, "context": multi_context(p, reviews), "reference": ref, "label": ""}


RELEVANCE_MIX = {
    "about": 0.2, "complaints": 0.2, "likes": 0.16, "proscons": 0.16, "summary": 0.16, "verdict": 0.12,
}


def gen_relevance(products: list[dict], n: int, rng: random.Random) -> list[dict]:
    counts = {k: max(1, round(n * w)) for k, w in RELEVANCE_MIX.items()}
    counts["summary"] += n - sum(counts.values())
    rows, seen = [], set()
    for kind, k in counts.items():
        made, tries = 0, 0
        order = products[:]
        while made < k and tries < 40 * k:
            if tries % len(order) == 0:
                rng.shuffle(order)
            p = order[tries % len(order)]
            tries += 1
            c = relevance_candidate(p, kind, rng)
            if c is None or (c["text"], c["context"]) in seen:
                continue
            seen.add((c["text"], c["context"]))
            rows.append({"task": "relevance", **c})
            made += 1
        if made < k:
            raise SystemExit(f"relevance/{kind}: only {made} of {k}")
    rng.shuffle(rows)
    return rows
