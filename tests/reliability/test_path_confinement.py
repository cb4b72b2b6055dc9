"""Worker paths are confined to EVALSITE_MODEL_ROOTS (issue 15, item 5): the attack run pointed adapter
folders, base models, GGUF files and fine-tuning output folders anywhere on disk, read a crafted
training.json and told existing files from folders by the error messages. Replayed here through the API
as an admin; the worker's side (an output folder is never overwritten) is in test_worker_output_folder.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

from generation.models import FinetuneRun, GenerationJob, Prompt
from generation.paths import NOT_ALLOWED
from tests.support.figures import figure
from tests.support.generation_data import make_dataset

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
DEMO_ADAPTER = ROOT / "demo" / "adapter"


@pytest.fixture
def var(settings, tmp_path) -> Path:
    """A var folder and the demo adapter as the only roots (the production default's shape)."""
    var = tmp_path / "var"
    (var / "models" / "base").mkdir(parents=True)
    (var / "models" / "base" / "config.json").write_text("{}")
    (var / "busy").mkdir()
    (var / "busy" / "adapter_model.safetensors").write_text("an older run's adapter")
    settings.EVALSITE_MODEL_ROOTS = [str(var), str(DEMO_ADAPTER)]
    return var


@pytest.fixture
def elsewhere(tmp_path) -> Path:
    """A folder outside the roots, as the attack used: a README, a crafted training.json, a model."""
    place = tmp_path / "elsewhere"
    (place / "model").mkdir(parents=True)
    (place / "model" / "config.json").write_text("{}")
    (place / "README.md").write_text("not yours")
    (place / "training.json").write_text(json.dumps({"mode": "lora", "trainable_params": 666}))
    (place / "weights.gguf").write_text("gguf")
    return place


def test_paths_outside_the_roots_are_refused_alike_and_touch_nothing(admin_user, var, elsewhere, monkeypatch):
    monkeypatch.chdir(ROOT)  # relative paths are read from the project folder, as the demo's worker does
    dataset = make_dataset("reviews")
    Prompt.objects.filter(dataset=dataset).update(reference="Negative.")
    (var / "link").symlink_to(elsewhere, target_is_directory=True)
    client = Client()
    client.force_login(admin_user)

    def job(**fields: str):
        body = {"dataset": "reviews", "base_model": "org/model", **fields}
        return client.post("/api/jobs/", body, content_type="application/json")

    def run(**fields: str):
        body = {"dataset": "reviews", "base_model": "org/model", "output_dir": str(var / "new"), **fields}
        return client.post("/api/finetune-runs/", body, content_type="application/json")

    refused = {  # (what was tried, the field the 400 names)
        "adapter: a folder with a crafted training.json": (job(adapter_path=str(elsewhere)), "adapter_path"),
        "adapter: missing": (job(adapter_path=str(elsewhere / "missing")), "adapter_path"),
        "adapter: a file": (job(adapter_path=str(elsewhere / "README.md")), "adapter_path"),
        "adapter: a link inside a root": (job(adapter_path=str(var / "link")), "adapter_path"),
        "adapter: root/..": (job(adapter_path=f"{var}/../elsewhere"), "adapter_path"),
        "adapter: relative": (job(adapter_path="docs"), "adapter_path"),
        "base: a model folder": (job(base_model=str(elsewhere / "model")), "base_model"),
        "base: missing": (job(base_model="/no/such/model"), "base_model"),
        "base: a GGUF file": (job(base_model=str(elsewhere / "weights.gguf")), "base_model"),
        "base: home": (job(base_model="~/model"), "base_model"),
        "gguf: out of its folder": (
            job(base_model=str(var / "models" / "base"), gguf_file="../../../elsewhere/weights.gguf"),
            "gguf_file",
        ),
        "run output: an existing folder": (run(output_dir=str(elsewhere)), "output_dir"),
        "run output: missing": (run(output_dir=str(elsewhere / "new")), "output_dir"),
        "run output: a file": (run(output_dir=str(elsewhere / "README.md")), "output_dir"),
        "run output: a root itself": (run(output_dir=str(var)), "output_dir"),
        "run base: a model folder": (run(base_model=str(elsewhere / "model")), "base_model"),
    }
    problems = [
        f"{what}: {response.status_code} {response.content!r}"
        for what, (response, field) in refused.items()
        if response.status_code != 400 or response.json() != {field: [NOT_ALLOWED]}
    ]
    busy = run(output_dir=str(var / "busy"))
    allowed = {
        "hub id": job().status_code,
        "demo adapter, relative": job(base_model="smollm2-demo", adapter_path="demo/adapter").status_code,
        "model folder inside": job(base_model=str(var / "models" / "base")).status_code,
        "new output folder inside": run().status_code,
    }
    outside_files = sorted(p.name for p in elsewhere.iterdir())
    runs_from_elsewhere = FinetuneRun.objects.filter(output_dir__startswith=str(elsewhere)).count()
    figure("path-confinement", refused=len(refused) - len(problems), tried=len(refused),
           distinct_answers=len({r.content for r, _ in refused.values()}), busy_output=busy.status_code,
           allowed=sorted(set(allowed.values())), runs_from_elsewhere=runs_from_elsewhere)  # fmt: skip
    assert not problems, "\n".join(problems)
    assert busy.status_code == 400 and "new or empty" in busy.json()["output_dir"][0]
    assert allowed == dict.fromkeys(allowed, 201), allowed
    assert outside_files == ["README.md", "model", "training.json", "weights.gguf"]
    assert (elsewhere / "README.md").read_text() == "not yours" and runs_from_elsewhere == 0
    assert GenerationJob.objects.count() == 3 and FinetuneRun.objects.filter(status="queued").count() == 1


def test_without_the_setting_the_roots_are_the_var_folder_and_the_demo_adapter(tmp_path):
    """What `make demo` relies on (it reads demo/adapter and writes under var/)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_", "EVALSITE_"))}
    env.update(EVALSITE_VAR_DIR=str(tmp_path), DEBUG="1", DJANGO_SETTINGS_MODULE="evalsite.settings")
    code = "import django, json; django.setup(); from django.conf import settings as s; " \
        "print(json.dumps(s.EVALSITE_MODEL_ROOTS))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120, check=True)  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [str(tmp_path), str(DEMO_ADAPTER)]
