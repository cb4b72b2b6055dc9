"""Jobs of more than two systems (issue 17): further adapters on the one base, given one by one or as
every kept epoch of a fine-tuning run. Each system answers every prompt exactly once, as that adapter
alone would; an adapter that cannot be used makes only its own system fall back; bad input, from the
command, the API or the job form, is refused and creates nothing."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from generation.configs import GenerationSettings
from generation.jobs import JobInputError, job_create, job_submit, job_submit_again
from generation.models import (
    Answer,
    FinetuneRun,
    GenerationChunk,
    GenerationJob,
    JobStatus,
    JobSystem,
    ModelLoadAttempt,
    job_system_names,
)
from generation.worker.chunks import chunk_run
from generation.worker.runtime import WorkerRuntime
from tests.support.generation_data import make_dataset, run_job_here
from tests.support.tiny_models import build_lora_adapter

SEND = "generation.publishing.app.send_task"
SETTINGS = GenerationSettings(max_new_tokens=6, batch_size=4, chunk_prompts=2)


@pytest.fixture(scope="module")
def other_adapters(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two more LoRA adapters on the tiny llama, each with its own random weights."""
    return (
        build_lora_adapter(tiny_llama_dir, tmp_path_factory.mktemp("adapter-b"), seed=2),
        build_lora_adapter(tiny_llama_dir, tmp_path_factory.mktemp("adapter-c"), seed=3),
    )


def broken_adapter(folder: Path) -> Path:
    """A folder that claims to be a LoRA adapter but has no weights: peft cannot load it."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(
        '{"peft_type": "LORA", "target_modules": ["q_proj"], "r": 4}'
    )
    return folder


def texts(job: GenerationJob, role: str) -> dict[str, str]:
    return {a.prompt.external_id: a.text for a in job.answers.filter(role=role).select_related("prompt")}


def two_system_texts(base: Path, adapter: Path) -> dict[str, str]:
    """The fine-tuned answers of a two-system job with `adapter` as its adapter (same prompts, settings)."""
    job = job_create(
        dataset=make_dataset(name=f"alone-{adapter.name}", n=3),
        base_model=str(base),
        adapter_path=str(adapter),
        settings=SETTINGS,
    )
    job = run_job_here(job)
    assert job.status == JobStatus.SUCCEEDED and not job.answers.filter(fallback=True).exists()
    return texts(job, "finetuned")


def four_system_job(base: Path, adapter: Path, b: Path, c: Path, *, dataset: str = "shop") -> GenerationJob:
    return job_create(
        dataset=make_dataset(name=dataset, n=3),
        base_model=str(base),
        adapter_path=str(adapter),
        settings=SETTINGS,
        systems=[("recipe-b", str(b)), {"name": "recipe-c", "adapter_path": str(c)}],
    )


# ---------------------------------------------------------------------------------------------
# Generating


@pytest.mark.slow
@pytest.mark.django_db
@pytest.mark.parametrize("mode", ["switch", "merged"])
def test_every_system_answers_every_prompt_once_as_its_adapter_alone_would(
    tiny_llama_dir, tiny_adapter_dir, other_adapters, monkeypatch, mode
):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", mode)
    b, c = other_adapters
    job = four_system_job(tiny_llama_dir, tiny_adapter_dir, b, c)
    assert job.total == 12 and job.chunks.count() == 2
    assert job_system_names(job) == ["pretrained", "finetuned", "recipe-b", "recipe-c"]
    runtime = WorkerRuntime()
    job = run_job_here(job, runtime)

    assert job.status == JobStatus.SUCCEEDED, job.error
    roles = list(job.answers.values_list("prompt__external_id", "role"))
    assert len(roles) == len(set(roles)) == 12
    assert {role: sum(1 for _, r in roles if r == role) for role in job_system_names(job)} == {
        "pretrained": 3, "finetuned": 3, "recipe-b": 3, "recipe-c": 3
    }  # fmt: skip
    assert not job.answers.filter(fallback=True).exists()
    attempts = list(ModelLoadAttempt.objects.filter(job=job).values_list("kind", "target", "success"))
    assert attempts == [
        ("base", str(tiny_llama_dir), True),
        ("adapter", str(tiny_adapter_dir), True),
        ("adapter", str(b), True),
        ("adapter", str(c), True),
    ]  # once per job and worker, for both chunks
    # one base load; with several adapters every one is attached to it, none merged into a copy
    (entry,) = runtime.host.loaded
    assert entry.is_peft and not entry.merged and len(entry.adapters) == 3

    # each system's answers are what its adapter gives as a two-system job's fine-tuned role
    answers = {role: texts(job, role) for role in job_system_names(job)}
    assert answers["finetuned"] == two_system_texts(tiny_llama_dir, tiny_adapter_dir)
    assert answers["recipe-b"] == two_system_texts(tiny_llama_dir, b)
    assert answers["recipe-c"] == two_system_texts(tiny_llama_dir, c)
    assert len({json.dumps(a, sort_keys=True) for a in answers.values()}) == 4, "two systems answered alike"


@pytest.mark.slow
@pytest.mark.django_db
def test_a_worker_that_merged_an_adapter_attaches_every_adapter_switched_for_a_job_of_several(
    tiny_llama_dir, tiny_adapter_dir, other_adapters, monkeypatch
):
    monkeypatch.setenv("EVALSITE_ADAPTER_MODE", "merged")
    b, c = other_adapters
    runtime = WorkerRuntime()
    two = run_job_here(
        job_create(
            dataset=make_dataset(name="two", n=3), base_model=str(tiny_llama_dir),
            adapter_path=str(tiny_adapter_dir), settings=SETTINGS,
        ),
        runtime,
    )  # fmt: skip
    (entry,) = runtime.host.loaded
    assert not entry.is_peft and set(entry.merged) == {"finetuned"}  # two systems: merged, as before

    job = run_job_here(four_system_job(tiny_llama_dir, tiny_adapter_dir, b, c), runtime)
    assert job.status == JobStatus.SUCCEEDED and job.answers.count() == 12
    (entry,) = runtime.host.loaded  # the same base, its merged copy dropped: one copy of the weights
    assert entry.is_peft and not entry.merged and len(entry.adapters) == 3
    assert texts(job, "finetuned") == texts(two, "finetuned")
    assert texts(job, "pretrained") == texts(two, "pretrained")
    assert texts(job, "recipe-b") != texts(job, "finetuned")


@pytest.mark.slow
@pytest.mark.django_db
def test_a_broken_adapter_makes_only_its_own_system_fall_back(
    tiny_llama_dir, tiny_adapter_dir, other_adapters, tmp_path
):
    b, _ = other_adapters
    broken = broken_adapter(tmp_path / "broken")
    job = job_create(
        dataset=make_dataset(n=3),
        base_model=str(tiny_llama_dir),
        adapter_path=str(tiny_adapter_dir),
        settings=SETTINGS,
        systems=[("broken", str(broken)), ("recipe-b", str(b))],
    )
    job = run_job_here(job)

    assert job.status == JobStatus.SUCCEEDED and job.answers.count() == 12
    fallback = set(job.answers.filter(fallback=True).values_list("role", flat=True))
    assert fallback == {"broken"} and job.answers.filter(role="broken", fallback=True).count() == 3
    assert texts(job, "broken") == texts(job, "pretrained")  # the base answered for it
    assert texts(job, "recipe-b") == two_system_texts(tiny_llama_dir, b)
    assert texts(job, "finetuned") != texts(job, "pretrained")
    failed = ModelLoadAttempt.objects.get(job=job, success=False)
    assert (failed.kind, failed.target) == ("adapter", str(broken))
    assert failed.error.startswith(f"cannot load adapter {broken}")
    assert ModelLoadAttempt.objects.filter(job=job, kind="adapter", success=True).count() == 2


@pytest.mark.slow
@pytest.mark.django_db
def test_a_broken_first_adapter_reloads_the_base_and_the_other_systems_still_answer(
    tiny_llama_dir, other_adapters, tmp_path
):
    """The fine-tuned adapter is attached first, to the plain base: failing there leaves LoRA layers in
    the base, which is loaded afresh before the further adapter is attached to it."""
    b, _ = other_adapters
    broken = broken_adapter(tmp_path / "broken")
    job = job_create(
        dataset=make_dataset(n=3),
        base_model=str(tiny_llama_dir),
        adapter_path=str(broken),
        settings=SETTINGS,
        systems=[("recipe-b", str(b))],
    )
    job = run_job_here(job)

    assert job.status == JobStatus.SUCCEEDED and job.answers.count() == 9
    assert set(job.answers.filter(fallback=True).values_list("role", flat=True)) == {"finetuned"}
    assert texts(job, "finetuned") == texts(job, "pretrained")
    assert texts(job, "recipe-b") == two_system_texts(tiny_llama_dir, b)
    attempts = list(ModelLoadAttempt.objects.filter(job=job).values_list("kind", "success"))
    assert attempts == [("base", True), ("adapter", False), ("base", True), ("adapter", True)]


@pytest.mark.slow
@pytest.mark.django_db
def test_running_a_chunk_again_makes_no_second_answer_in_any_system(
    tiny_llama_dir, tiny_adapter_dir, other_adapters
):
    b, c = other_adapters
    job = four_system_job(tiny_llama_dir, tiny_adapter_dir, b, c)
    chunk = job.chunks.order_by("index").first()
    first = job.dataset.prompts.order_by("id").first()
    # a first delivery died after one answer of a further system; the next makes only the other seven
    Answer.objects.create(job=job, prompt=first, role="recipe-c", text="from the first try")
    GenerationChunk.objects.filter(pk=chunk.pk).update(status=JobStatus.RUNNING, attempts=1)
    runtime = WorkerRuntime()
    chunk_run(chunk_id=chunk.pk, runtime=runtime)
    chunk_run(chunk_id=chunk.pk, runtime=runtime)  # a duplicate delivery
    assert job.answers.count() == 8
    job = run_job_here(job, runtime)  # the second chunk, then every chunk once more
    job = run_job_here(job, runtime)

    assert job.status == JobStatus.SUCCEEDED and job.answers.count() == 12
    roles = list(job.answers.values_list("prompt_id", "role"))
    assert len(roles) == len(set(roles))
    assert job.answers.filter(text="from the first try").count() == 1


# ---------------------------------------------------------------------------------------------
# Kept epochs of a run


def run_with_kept_epochs(tmp_path: Path, epochs=(1, 3, 5), best=3, *, folders: bool = True) -> FinetuneRun:
    output = tmp_path / "run"
    kept = []
    for epoch in epochs:
        folder = f"epochs/epoch-{epoch:03d}"
        if folders:
            (output / folder).mkdir(parents=True)
        kept.append({"epoch": epoch, "val_loss": 2.0 - epoch / 10, "train_loss": 1.0, "folder": folder})
    output.mkdir(parents=True, exist_ok=True)
    metrics = {"best_epoch": best, "best_val_loss": 1.7, "kept_epochs": kept, "epochs_run": 5}
    return FinetuneRun.objects.create(
        base_model="/models/base", output_dir=str(output), status=JobStatus.SUCCEEDED, metrics=metrics
    )


@pytest.mark.django_db
def test_kept_epochs_of_a_run_become_systems_except_its_best(tmp_path):
    run = run_with_kept_epochs(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    job = job_create(
        dataset=make_dataset(n=4),
        base_model="",
        finetune_run_id=run.pk,
        kept_epochs=True,
        systems=[("outside-recipe", str(other))],
    )
    assert job_system_names(job) == ["pretrained", "finetuned", "epoch-001", "epoch-005", "outside-recipe"]
    rows = list(job.extra_systems.order_by("id").values_list("name", "adapter_path", "epoch", "val_loss"))
    assert rows == [
        ("epoch-001", str(tmp_path / "run/epochs/epoch-001"), 1, 1.9),
        ("epoch-005", str(tmp_path / "run/epochs/epoch-005"), 5, 1.5),
        ("outside-recipe", str(other), None, None),
    ]
    assert set(job.extra_systems.values_list("kind", flat=True)) == {"adapter"}
    assert [s.finetune_run_id for s in job.extra_systems.order_by("id")] == [run.pk, run.pk, None]
    assert job.total == 4 * 5 and job.finetuned_model.adapter_path == str(tmp_path / "run")

    with mock.patch(SEND):
        again = job_submit_again(job=job)
    assert job_system_names(again) == job_system_names(job) and again.total == 20
    assert list(again.extra_systems.values_list("adapter_path", "epoch", "val_loss", "finetune_run")) == list(
        job.extra_systems.values_list("adapter_path", "epoch", "val_loss", "finetune_run")
    )


@pytest.mark.django_db
def test_kept_epochs_that_cannot_be_used_are_refused_and_nothing_is_made(tmp_path):
    dataset = make_dataset(n=2)
    plain = FinetuneRun.objects.create(
        base_model="/b", output_dir=str(tmp_path / "plain"), status=JobStatus.SUCCEEDED,
        metrics={"best_epoch": 2},
    )
    only_best = run_with_kept_epochs(tmp_path / "a", epochs=(3,), best=3)
    gone = run_with_kept_epochs(tmp_path / "b", folders=False)
    clash = run_with_kept_epochs(tmp_path / "c")
    cases = [
        ({"finetune_run_id": plain.pk, "kept_epochs": True},
         "kept_epochs",
         f"run {plain.pk} kept no epochs (fine-tune with --keep-epochs or --keep-every to keep some)"),
        ({"finetune_run_id": only_best.pk, "kept_epochs": True},
         "kept_epochs", f"run {only_best.pk} kept only its best epoch (3), which is the fine-tuned system"),
        ({"base_model": "/b", "kept_epochs": True}, "kept_epochs", "needs a fine-tuning run (finetune_run)"),
        ({"finetune_run_id": gone.pk, "kept_epochs": True},
         "systems", f'system 1 "epoch-001": adapter folder not found: {tmp_path / "b/run/epochs/epoch-001"}'),
        ({"finetune_run_id": clash.pk, "kept_epochs": True,
          "systems": [("epoch-005", str(tmp_path / "c/run/epochs/epoch-005"))]},
         "systems", 'system 3 "epoch-005": the name is used twice'),
    ]  # fmt: skip
    for kwargs, field, message in cases:
        with pytest.raises(JobInputError) as caught:
            job_create(dataset=dataset, **{"base_model": "", **kwargs})
        assert (caught.value.field, caught.value.message) == (field, message)
    assert not GenerationJob.objects.exists() and not JobSystem.objects.exists()


@pytest.mark.django_db
def test_bad_systems_are_refused_naming_the_system_and_nothing_is_made(tmp_path):
    dataset = make_dataset(n=2)
    good = tmp_path / "roots" / "good"
    good.mkdir(parents=True)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    taken = "every job has this system already; pick another name"
    not_allowed = "this path is not allowed (allowed: folders inside EVALSITE_MODEL_ROOTS)"
    bad_name = 'a name is letters, digits, "-" and "_", at most 64'
    cases = [
        ([("finetuned", str(good))], f'system 1 "finetuned": {taken}'),
        ([("pretrained", str(good))], f'system 1 "pretrained": {taken}'),
        ([("a", str(good)), ("a", str(good))], 'system 2 "a": the name is used twice'),
        ([("two words", str(good))], f'system 1 "two words": {bad_name}'),
        ([("x" * 65, str(good))], f'system 1 "{"x" * 65}": {bad_name}'),
        ([("", str(good))], "system 1: a name is required"),
        ([("a", "")], 'system 1 "a": an adapter folder is required'),
        ([("a", str(good / "missing"))], f'system 1 "a": adapter folder not found: {good / "missing"}'),
        # outside EVALSITE_MODEL_ROOTS: the same answer whether or not it exists, naming no path
        ([("a", str(outside))], f'system 1 "a": {not_allowed}'),
        ([("a", str(outside / "nope"))], f'system 1 "a": {not_allowed}'),
        (["just-a-name"], "system 1: give a name and an adapter folder"),
    ]  # fmt: skip
    with override_settings(EVALSITE_MODEL_ROOTS=[str(tmp_path / "roots")]):
        for systems, message in cases:
            with pytest.raises(JobInputError) as caught:
                job_create(dataset=dataset, base_model="org/model", systems=systems)
            assert (caught.value.field, caught.value.message) == ("systems", message)
        job = job_create(dataset=dataset, base_model="org/model", systems=[("a", str(good))])
    assert job.total == 6 and list(JobSystem.objects.values_list("name", flat=True)) == ["a"]


# ---------------------------------------------------------------------------------------------
# queue_generation


def queue(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    with mock.patch(SEND):
        call_command("queue_generation", "--dataset", "shop", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_queue_generation_adds_systems_and_kept_epochs(tmp_path):
    make_dataset(n=3)
    b, c = tmp_path / "b", tmp_path / "c"
    b.mkdir(), c.mkdir()
    out, err = queue("--base", "org/model", "--system", f"recipe-b={b}", "--system", f"recipe-c={c}")
    job = GenerationJob.objects.get(pk=int(out.strip().splitlines()[-1]))
    assert job_system_names(job) == ["pretrained", "finetuned", "recipe-b", "recipe-c"]
    assert list(job.extra_systems.values_list("adapter_path", flat=True)) == [str(b), str(c)]
    assert job.total == 12 and "12 answers (3 prompts x 4 systems)" in err

    run = run_with_kept_epochs(tmp_path / "run")
    out, _ = queue("--finetune-run", str(run.pk), "--kept-epochs")
    job = GenerationJob.objects.get(pk=int(out.strip().splitlines()[-1]))
    assert job_system_names(job) == ["pretrained", "finetuned", "epoch-001", "epoch-005"]
    assert job.total == 12 and job.pretrained_model.base_model == "/models/base"


@pytest.mark.django_db(transaction=True)
def test_queue_generation_refuses_bad_systems_in_one_line_and_creates_nothing(tmp_path):
    make_dataset(n=3)
    b = tmp_path / "b"
    b.mkdir()
    cases = [
        (["--system", f"x={b}", "--system", f"x={b}"], '--system: system 2 "x": the name is used twice'),
        (["--system", f"finetuned={b}"],
         '--system: system 1 "finetuned": every job has this system already; pick another name'),
        (["--system", f"x={tmp_path / 'missing'}"],
         f'--system: system 1 "x": adapter folder not found: {tmp_path / "missing"}'),
        (["--system", str(b)], f"--system: give NAME=ADAPTER_DIR, not {str(b)!r}"),
        (["--kept-epochs"], "--kept-epochs: needs --finetune-run"),
    ]  # fmt: skip
    for args, message in cases:
        with pytest.raises(CommandError) as caught:
            queue("--base", "org/model", *args)
        assert str(caught.value) == message and "\n" not in message
    plain = FinetuneRun.objects.create(
        base_model="/b", output_dir=str(b), status=JobStatus.SUCCEEDED, metrics={"best_epoch": 1}
    )
    with pytest.raises(CommandError, match=rf"^--kept-epochs: run {plain.pk} kept no epochs"):
        queue("--finetune-run", str(plain.pk), "--kept-epochs")
    assert not GenerationJob.objects.exists() and not JobSystem.objects.exists()


# ---------------------------------------------------------------------------------------------
# API and pages


@pytest.mark.django_db(transaction=True)
def test_the_api_queues_a_job_with_systems_and_shows_them(client, admin_user, tmp_path):
    make_dataset(n=3)
    b = tmp_path / "b"
    b.mkdir()
    run = run_with_kept_epochs(tmp_path / "run")
    client.force_login(admin_user)
    body = {
        "dataset": "shop", "finetune_run": run.pk, "kept_epochs": True,
        "systems": [{"name": "recipe-b", "adapter_path": str(b)}],
    }  # fmt: skip
    with mock.patch(SEND):
        response = client.post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    job = GenerationJob.objects.get()
    created = response.json()
    assert created["total"] == 15 and created["adapter_path"] == str(tmp_path / "run/run")
    prompt = job.dataset.prompts.first()
    Answer.objects.create(job=job, prompt=prompt, role="recipe-b", text="b", fallback=True)
    Answer.objects.create(job=job, prompt=prompt, role="pretrained", text="p")

    detail = client.get(f"/api/jobs/{job.pk}/").json()
    assert detail["systems"] == [
        {"name": "pretrained", "kind": "base", "adapter_path": "", "epoch": None, "val_loss": None,
         "answers": 1, "fallback": 0},
        {"name": "finetuned", "kind": "adapter", "adapter_path": str(tmp_path / "run/run"), "epoch": 3,
         "val_loss": 1.7, "answers": 0, "fallback": 0},
        {"name": "epoch-001", "kind": "adapter", "adapter_path": str(tmp_path / "run/run/epochs/epoch-001"),
         "epoch": 1, "val_loss": 1.9, "answers": 0, "fallback": 0},
        {"name": "epoch-005", "kind": "adapter", "adapter_path": str(tmp_path / "run/run/epochs/epoch-005"),
         "epoch": 5, "val_loss": 1.5, "answers": 0, "fallback": 0},
        {"name": "recipe-b", "kind": "adapter", "adapter_path": str(b), "epoch": None, "val_loss": None,
         "answers": 1, "fallback": 1},
    ]  # fmt: skip
    assert detail["done"] == 2 and detail["total"] == 15
    (listed,) = client.get("/api/jobs/").json()
    assert listed["systems"] == detail["systems"]


@pytest.mark.django_db(transaction=True)
def test_the_api_refuses_bad_systems_with_a_400_naming_the_field(client, admin_user, tmp_path):
    make_dataset(n=3)
    b = tmp_path / "b"
    b.mkdir()
    client.force_login(admin_user)
    cases = [
        ({"systems": [{"name": "finetuned", "adapter_path": str(b)}]}, "systems",
         'system 1 "finetuned": every job has this system already; pick another name'),
        ({"systems": [{"name": "x", "adapter_path": str(b)}, {"name": "x", "adapter_path": str(b)}]},
         "systems", 'system 2 "x": the name is used twice'),
        ({"systems": [{"name": "x", "adapter_path": str(tmp_path / "nope")}]}, "systems",
         f'system 1 "x": adapter folder not found: {tmp_path / "nope"}'),
        ({"kept_epochs": True}, "kept_epochs", "needs a fine-tuning run (finetune_run)"),
    ]  # fmt: skip
    for extra, field, message in cases:
        with mock.patch(SEND) as send:
            response = client.post(
                "/api/jobs/",
                {"dataset": "shop", "base_model": "org/model", **extra},
                content_type="application/json",
            )
        assert response.status_code == 400 and response.json() == {field: [message]}, response.content
        assert send.call_count == 0
    with mock.patch(SEND):
        response = client.post(
            "/api/jobs/",
            {"dataset": "shop", "base_model": "org/model", "systems": [{"name": "x"}]},
            content_type="application/json",
        )
    assert response.status_code == 400 and "adapter_path" in response.json()["systems"]["0"]
    assert not GenerationJob.objects.exists() and not JobSystem.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_job_form_adds_kept_epochs_and_the_job_page_lists_every_system(client, admin_user, tmp_path):
    make_dataset(n=2)
    run = run_with_kept_epochs(tmp_path)
    client.force_login(admin_user)
    page = client.get(f"/jobs/new/?run={run.pk}").content.decode()
    assert "Also answer with the run&#x27;s kept epochs" in page and 'name="kept_epochs"' in page
    form = {"dataset": "shop", "model": f"run:{run.pk}", "kept_epochs": "on"}
    with mock.patch(SEND):
        refused = client.post("/jobs/new/", {**form, "model": ""})
        response = client.post("/jobs/new/", form)
    assert refused.status_code == 400 and "Pick a finished fine-tuning run above" in refused.content.decode()
    job = GenerationJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job_system_names(job) == ["pretrained", "finetuned", "epoch-001", "epoch-005"]
    prompt = job.dataset.prompts.first()
    Answer.objects.create(job=job, prompt=prompt, role="epoch-005", text="x", fallback=True)

    html = client.get(f"/jobs/{job.pk}/").content.decode()
    rows = html.split("<h2>Systems</h2>")[1].split("</table>")[0]
    for name in job_system_names(job):
        assert f'data-system="{name}"' in rows
    assert "Answers (of 2)" in rows and "1 (1 fallback)" in rows
    assert str(tmp_path / "run/epochs/epoch-005") in rows


@pytest.mark.django_db
def test_a_two_system_job_is_unchanged(tmp_path):
    with mock.patch(SEND):
        job = job_submit(dataset=make_dataset(n=3), base_model="org/model", adapter_path=str(tmp_path))
    assert job.total == 6 and job_system_names(job) == ["pretrained", "finetuned"]
    assert not JobSystem.objects.exists()
