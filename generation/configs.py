"""The one definition of every setting a generation job or a fine-tuning run takes.

Plain dataclasses with no Django and no torch: the web side validates API, admin and command input
with them, the worker runs with them, and the ML package (generation.ml) reads them. A bad value
raises ConfigError naming the field, so callers never parse messages to find out which one it was.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Rows per batch unless a job says otherwise; a chunk holds half as many prompts, so its two roles fill
# one batch (docs/performance.md has the measurement behind the number).
DEFAULT_BATCH_SIZE = 64
DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
DEFAULT_LR = {"lora": 2e-4, "full": 2e-5}
FINETUNE_MODES = tuple(DEFAULT_LR)


class ConfigError(ValueError):
    """One setting has an unusable value. `field` is the setting's name, `message` says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _whole(name: str, value: Any, low: int, high: int | None = None) -> int:
    too_high = high is not None and isinstance(value, int) and value > high
    if isinstance(value, bool) or not isinstance(value, int) or value < low or too_high:
        limit = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise ConfigError(name, f"must be a whole number {limit}")
    return value


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(name, "must be a number")
    return float(value)


@dataclass(frozen=True)
class GenerationSettings:
    """How a job generates: stored as `GenerationJob.settings` (its `as_dict`), read by the worker.

    `temperature` and `top_p` apply when `do_sample` is on; None takes the model's own generation
    config, as transformers' generate() would. `chunk_prompts` is how many prompts one worker task
    answers; None takes the site's default when the job is created, which then stores the number.
    `prompt_limit` answers only the dataset's first N prompts (by id); None answers every prompt."""

    max_new_tokens: int = 64
    batch_size: int = DEFAULT_BATCH_SIZE
    seed: int = 0
    do_sample: bool = False
    temperature: float | None = None
    top_p: float | None = None
    chunk_prompts: int | None = None
    prompt_limit: int | None = None

    LIMITS = {"max_new_tokens": (1, 8192), "batch_size": (1, 4096)}

    def __post_init__(self) -> None:
        for name, (low, high) in self.LIMITS.items():
            _whole(name, getattr(self, name), low, high)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ConfigError("seed", "must be a whole number")
        if not isinstance(self.do_sample, bool):
            raise ConfigError("do_sample", "must be true or false")
        if self.temperature is not None and not _number("temperature", self.temperature) > 0:
            raise ConfigError("temperature", "must be positive")
        if self.top_p is not None and not 0 < _number("top_p", self.top_p) <= 1:
            raise ConfigError("top_p", "must be in (0, 1]")
        if self.chunk_prompts is not None:
            _whole("chunk_prompts", self.chunk_prompts, 1)
        if self.prompt_limit is not None:
            _whole("prompt_limit", self.prompt_limit, 1)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GenerationSettings:
        """Settings from stored or submitted values; unknown keys are ignored, missing ones default."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names and v is not None})

    def as_dict(self) -> dict[str, Any]:
        """The stored form: sampling values left to the model (None) are not written."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class Sampling:
    """How the decode loop picks the next token: greedy unless `do_sample`."""

    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    seed: int = 0


@dataclass
class FinetuneConfig:
    """A fine-tuning run's options (the `finetune` command's flags, the API's fields)."""

    mode: str = "lora"  # "lora" or "full"
    epochs: int = 50
    patience: int = 10
    lr: float | None = None  # None: DEFAULT_LR[mode]
    batch_size: int = 8
    max_length: int = 384
    seed: int = 0
    val_fraction: float = 0.1
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    gradient_checkpointing: bool = False
    max_examples: int | None = None
    weight_decay: float = 0.0
    device: str | None = None  # None: cuda when available, else cpu
    # CPU threads for torch; None keeps torch's default. On a CPU shared with other work, 1 thread
    # can be several times faster than oversubscribed threads that wait on each other.
    threads: int | None = None
    # Checkpoints kept beside the best epoch (each a folder `epochs/epoch-NNN` a job can use as an
    # adapter): these epochs, and every `keep_every`-th one.
    keep_epochs: tuple[int, ...] = ()
    keep_every: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in DEFAULT_LR:
            raise ConfigError("mode", f"unknown mode {self.mode!r}: use 'lora' or 'full'")
        if isinstance(self.target_modules, str):
            self.target_modules = tuple(m.strip() for m in self.target_modules.split(",") if m.strip())
        self.target_modules = tuple(self.target_modules)
        self.keep_epochs = _epoch_list(self.keep_epochs)
        checks = [
            ("epochs", self.epochs >= 1, "must be at least 1"),
            ("patience", self.patience >= 1, "must be at least 1"),
            ("batch_size", self.batch_size >= 1, "must be at least 1"),
            ("max_length", self.max_length >= 2, "must be at least 2"),
            ("val_fraction", 0 < self.val_fraction < 1, "must be between 0 and 1 (exclusive)"),
            ("r", self.r >= 1, "must be at least 1"),
            ("dropout", 0 <= self.dropout < 1, "must be in [0, 1)"),
            ("target_modules", bool(self.target_modules), "must name at least one module"),
            ("max_examples", self.max_examples is None or self.max_examples >= 2, "must be at least 2"),
            ("lr", self.lr is None or self.lr > 0, "must be positive"),
            ("threads", self.threads is None or self.threads >= 1, "must be at least 1"),
            ("keep_every", self.keep_every is None or self.keep_every >= 1, "must be at least 1"),
        ]
        for name, ok, message in checks:
            if not ok:
                raise ConfigError(name, message)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> FinetuneConfig:
        """A config from option values (command flags, API fields, a stored run's config): None or
        a missing key takes the default, "" for device means auto, unknown keys are ignored."""
        names = set(option_names(cls))
        values = {k: v for k, v in options.items() if k in names and v is not None}
        if values.get("device") == "":
            values.pop("device")
        return cls(**values)

    def keeps(self, epoch: int) -> bool:
        """Whether `epoch`'s weights are kept as a checkpoint of their own."""
        return epoch in self.keep_epochs or bool(self.keep_every and epoch % self.keep_every == 0)

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else DEFAULT_LR[self.mode]

    def lora_dict(self) -> dict[str, Any] | None:
        if self.mode != "lora":
            return None
        return {
            "r": self.r,
            "alpha": self.alpha,
            "dropout": self.dropout,
            "target_modules": list(self.target_modules),
            "bias": "none",
        }

    def as_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["target_modules"] = list(self.target_modules)
        data["keep_epochs"] = list(self.keep_epochs)
        data["lr"] = self.learning_rate
        return data


def setting_text(value: object) -> str:
    """A setting's value in words for pages (job settings, run configs): yes/no, lists joined, no
    Python reprs; None (unset) is "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(setting_text(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {setting_text(v)}" for k, v in value.items())
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _epoch_list(value: object) -> tuple[int, ...]:
    """Epoch numbers from "5,10,25" or a sequence of ints: sorted, distinct, each at least 1."""
    items = value.split(",") if isinstance(value, str) else list(value or ())  # type: ignore[call-overload]
    epochs = set()
    for item in items:
        text = str(item).strip()
        if not text:
            continue
        if not text.isdigit() or int(text) < 1:
            raise ConfigError("keep_epochs", f"{text!r} is not an epoch number (1, 2, …)")
        epochs.add(int(text))
    return tuple(sorted(epochs))


def option_names(config_class: type, *, exclude: Iterable[str] = ()) -> tuple[str, ...]:
    """The option names of a config dataclass, for forms and serializers that mirror it."""
    return tuple(f.name for f in dataclasses.fields(config_class) if f.name not in set(exclude))
