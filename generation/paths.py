"""Where workers may read models from and write fine-tuning output to: the folders EVALSITE_MODEL_ROOTS
names (default: the var folder and the committed demo adapter).

Workers run with more rights than the admins who queue their work (often as root, on machines the admins
cannot log in to), so every folder or file a user names for a job or a run is checked here before a row
is created: adapter folders, local base-model folders, GGUF files and fine-tuning output folders. Hub ids
("org/name") and the demo model's alias are not paths and pass unchanged.

A path outside the roots gets one answer whatever is there ("not allowed"), so the check tells nobody
which files or folders exist outside the roots. Paths are resolved before they are compared (symlinks
followed, `..` removed), so neither a link inside a root nor `root/../elsewhere` gets out. A relative
path is taken from the current folder, as a worker started in the project folder reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.conf import settings

from .configs import ConfigError

NOT_ALLOWED = "this path is not allowed (allowed: folders inside EVALSITE_MODEL_ROOTS)"
# what the worker reads as a hub id rather than a folder (see generation.ml.modeling.resolve_base)
HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?")
DEMO_MODEL_ALIAS = "smollm2-demo"


class PathNotAllowed(ConfigError):
    """A path outside EVALSITE_MODEL_ROOTS; `field` names the input, the message never the path."""

    def __init__(self, field: str) -> None:
        super().__init__(field, NOT_ALLOWED)


def model_roots() -> list[Path]:
    """The configured roots, resolved."""
    return [Path(root).expanduser().resolve() for root in settings.EVALSITE_MODEL_ROOTS]


def _resolved(value: str | Path) -> Path:
    return Path(value).expanduser().resolve()


def inside_roots(value: str | Path, *, strictly: bool = False) -> bool:
    """Whether the path (resolved) is a root or lies below one; `strictly`: below one, not a root itself."""
    path = _resolved(value)
    return any(path.is_relative_to(root) and not (strictly and path == root) for root in model_roots())


def confined(value: str, *, field: str, strictly: bool = False) -> Path:
    """The resolved path, or PathNotAllowed naming `field` when it lies outside the roots."""
    if not inside_roots(value, strictly=strictly):
        raise PathNotAllowed(field)
    return _resolved(value)


def is_hub_id(value: str) -> bool:
    """A name the worker looks up on a model hub, not on disk: `name` or `org/name`, unless a folder of
    that name lies inside the roots (the worker then reads the folder, as `demo/adapter` is read)."""
    if value.startswith((".", "/", "~")) or value.endswith(".gguf") or not HUB_ID.fullmatch(value):
        return False
    return not inside_roots(value)


def check_model_paths(*, base_model: str, gguf_file: str = "", adapter_path: str = "") -> None:
    """PathNotAllowed unless every local path a job or run names lies inside the roots."""
    base_model, gguf_file = (base_model or "").strip(), (gguf_file or "").strip()
    if gguf_file:
        # a GGUF file is read from the base-model folder: both must stay inside
        confined(base_model or ".", field="base_model")
        confined(str(Path(base_model or ".") / gguf_file), field="gguf_file")
    elif base_model and base_model != DEMO_MODEL_ALIAS and not is_hub_id(base_model):
        confined(base_model, field="base_model")
    if (adapter_path or "").strip():
        confined(adapter_path.strip(), field="adapter_path")


def check_output_folder(output_dir: str, *, field: str = "output_dir") -> Path:
    """The resolved output folder of a fine-tuning run: below a root (never a root itself, as the run
    stages its files next to it) and new or empty, so a run never replaces files it did not make.
    Raises PathNotAllowed, or ConfigError for a file or a folder with something in it."""
    output = confined(output_dir, field=field, strictly=True)
    if output.exists():
        if not output.is_dir():
            raise ConfigError(field, "exists and is not a folder")
        if next(output.iterdir(), None) is not None:
            raise ConfigError(field, "must be a new or empty folder (nothing is ever overwritten)")
    return output
