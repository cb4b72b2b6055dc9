"""Picking each row's next token from its logits: greedy, or sampled as a job's settings say."""

from __future__ import annotations

import torch

from generation.configs import Sampling


class TokenPicker:
    """Greedy unless `sampling.do_sample`; then it draws from the softmax of the logits divided by
    `temperature`, restricted to the `top_k` most likely tokens and the smallest set whose probability
    reaches `top_p`, with a generator seeded by `sampling.seed` (one per decode call, so a job's
    answers repeat with its seed)."""

    def __init__(self, sampling: Sampling, device: str) -> None:
        self.sampling = sampling
        self.generator: torch.Generator | None = None
        if sampling.do_sample:
            self.generator = torch.Generator(device=device)
            self.generator.manual_seed(sampling.seed)

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        sampling = self.sampling
        if not sampling.do_sample:
            return logits.argmax(-1)
        scores = logits.float() / max(sampling.temperature, 1e-5)
        if sampling.top_k and sampling.top_k < scores.shape[-1]:
            kth = torch.topk(scores, sampling.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if sampling.top_p < 1.0:
            ordered, index = torch.sort(scores, dim=-1, descending=True)
            cumulative = ordered.softmax(-1).cumsum(-1)
            # drop a token when the tokens before it already reach top_p (the most likely one always stays)
            drop = (cumulative - ordered.softmax(-1)) >= sampling.top_p
            scores = scores.masked_fill(drop.scatter(-1, index, drop), float("-inf"))
        probs = scores.softmax(-1)
        return torch.multinomial(probs, 1, generator=self.generator).squeeze(-1)
