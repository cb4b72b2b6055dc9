"""The campaign's answers, read once, as the style-identifiability figure; the result is cached by the
answers' text, which does not change once a campaign is open, so a live report refreshing every few
seconds trains the classifier once."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.core.cache import cache

from reports.campaign_rows import AnswerTextRow
from reports.statistics.style import METHOD, style_identifiability

CACHE_SECONDS = 24 * 3600

logger = logging.getLogger(__name__)


def style_figures(answer_rows: list[AnswerTextRow]) -> dict[str, Any]:
    """`style_identifiability` over the pairs' two answers (rows as `read_answer_texts` gives them)."""
    pretrained = [row[2] or "" for row in answer_rows]
    finetuned = [row[3] or "" for row in answer_rows]
    digest = hashlib.sha256(METHOD.encode())
    for pt_text, ft_text in zip(pretrained, finetuned, strict=True):
        digest.update(b"\x00pt\x00" + pt_text.encode() + b"\x00ft\x00" + ft_text.encode())
    key = f"evalsite:style-identifiability:{digest.hexdigest()}"
    try:
        figures = cache.get(key)
    except Exception:  # a cache server that does not answer costs a recomputation, never the report
        logger.warning("style identifiability: cache unavailable, computing", exc_info=True)
        figures = None
    if figures is None:
        figures = style_identifiability(pretrained, finetuned)
        try:
            cache.set(key, figures, CACHE_SECONDS)
        except Exception:
            logger.warning("style identifiability: cache unavailable, not stored", exc_info=True)
    return figures
