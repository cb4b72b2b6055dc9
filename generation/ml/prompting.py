"""How a prompt becomes chat messages: one definition shared by generation and fine-tuning, so the
adapter is trained on exactly the input it later answers."""

from __future__ import annotations

from typing import Protocol

from transformers import PreTrainedTokenizerBase

SYSTEM_MESSAGE = "You are a helpful shopping assistant. Answer briefly and directly from the reviews given."


class PromptLike(Protocol):
    text: str
    context: str


def chat_messages(prompt: PromptLike) -> list[dict[str, str]]:
    user = prompt.text if not prompt.context else f"{prompt.context}\n\n{prompt.text}"
    return [{"role": "system", "content": SYSTEM_MESSAGE}, {"role": "user", "content": user}]


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: PromptLike) -> str:
    """The exact text fed to the model, ending where the assistant's answer begins."""
    messages = chat_messages(prompt)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return f"{messages[0]['content']}\n\nUser: {messages[1]['content']}\nAssistant:"
