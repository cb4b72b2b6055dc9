"""`make demo`: from a fresh checkout to a site with 100 blinded pairs ready to rate.

Steps: migrate a SQLite database, import the demo evaluation set, start a real Celery worker on the
server-less filesystem broker, run a real generation job (SmolLM2-135M-Instruct against the same model
with the committed LoRA adapter in demo/adapter), create users and a campaign, then serve
http://127.0.0.1:8000 with the worker still running (admins can queue more jobs). Ctrl-C stops both.
Running it again reuses what is already there.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DATASET = "demo-eval"
CAMPAIGN = "Demo: SmolLM2 vs SmolLM2 + review LoRA"
USERS = [
    ("annotator1", "annotator"),
    ("annotator2", "annotator"),
    ("annotator3", "annotator"),
    ("researcher", "researcher"),
    ("admin", "admin"),
]
DEMO_PASSWORD_SUFFIX = "-demo-pass"
PORT = int(os.environ.get("EVALSITE_DEMO_PORT", "8000"))

env = dict(os.environ)
env.setdefault("DEBUG", "1")
env.setdefault("HF_HUB_OFFLINE", "1")
# the serving-latency sample (answered one at a time) is the slow part on 2 cores: 4 per role here
env.setdefault("SERVING_SAMPLE_PER_ROLE", "4")
env["PYTHONPATH"] = str(ROOT)
env["PYTHONUNBUFFERED"] = "1"


def say(message: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {message}", flush=True)


def manage(*args: str, check: bool = True) -> str:
    """Run a management command, echo its output, return its last line."""
    proc = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, text=True, capture_output=True)
    if proc.stderr.strip():
        sys.stderr.write(proc.stderr)
    if check and proc.returncode != 0:
        sys.stdout.write(proc.stdout)
        raise SystemExit(f"demo: `manage.py {' '.join(args)}` failed (exit {proc.returncode})")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def django_query(code: str) -> str:
    proc = subprocess.run(
        [PY, "-c", "import django; django.setup();\n" + code],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "evalsite.settings"}, text=True, capture_output=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"demo: query failed: {proc.stderr.strip().splitlines()[-1]}")
    return proc.stdout.strip()


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_port() -> None:
    if not port_free(PORT):
        # say so before minutes of generation, not after
        raise SystemExit(
            f"demo: 127.0.0.1:{PORT} is already in use (another demo still running?); stop it or set "
            "EVALSITE_DEMO_PORT"
        )


def import_once(path: str, dataset: str, what: str) -> None:
    """`import_prompts PATH --dataset NAME` unless that dataset exists already."""
    exists = django_query(
        f"from generation.models import Dataset; print(Dataset.objects.filter(name={dataset!r}).exists())"
    )
    if exists != "True":
        say(f"importing {what} ({path})")
        manage("import_prompts", path, "--dataset", dataset)


def start_worker() -> subprocess.Popen:
    log = open(ROOT / "var" / "worker.log", "a")
    say("starting a Celery worker (filesystem broker, log in var/worker.log)")
    return subprocess.Popen(
        [PY, "-m", "celery", "-A", "evalsite", "worker", "--pool", "solo", "--concurrency", "1",
         "--loglevel", "info", "--hostname", "demo-worker@%h"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )


def make_users() -> None:
    for username, role in USERS:
        exists = django_query(
            f"from annotations.models import User; print(User.objects.filter(username={username!r}).exists())"
        )
        if exists != "True":
            manage("create_user", username, "--role", role, "--password", username + DEMO_PASSWORD_SUFFIX)


def campaign_once(job_id: str, name: str) -> str:
    """The campaign called `name`, opened on `job_id` unless it exists; prints its size."""
    campaign_id = django_query(
        f"from annotations.models import Campaign; c = Campaign.objects.filter(name={name!r}).first(); "
        "print(c.id if c else '')"
    )
    if not campaign_id:
        campaign_id = manage("create_campaign", "--job", job_id, "--name", name, "--overlap", "3")
    pairs = django_query(f"from annotations.models import Pair; print(Pair.objects.filter(campaign_id={campaign_id}).count())")
    say(f"campaign {campaign_id} has {pairs} blinded pairs")
    return campaign_id


def serve(worker: subprocess.Popen) -> None:
    """Print the logins, serve the site until Ctrl-C, then stop the server and the worker."""
    server = None
    try:
        print()
        print(f"evalsite demo is ready at http://127.0.0.1:{PORT}")
        for username, role in USERS:
            print(f"  {role:<11} {username:<11} password: {username + DEMO_PASSWORD_SUFFIX}")
        print(
            "Annotators rate pairs at /annotate/; the researcher reads reports and downloads exports at "
            "/campaigns/; the admin uploads datasets (/datasets/upload/), queues jobs (/jobs/new/), opens "
            "campaigns from a finished job's page (/jobs/) and manages users in /admin/."
        )
        print("Ctrl-C stops the site and the worker.", flush=True)
        server = subprocess.Popen(
            [PY, "manage.py", "runserver", f"127.0.0.1:{PORT}", "--noreload"], cwd=ROOT, env=env
        )
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(server, worker)


def stop(*procs: subprocess.Popen | None) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs:
        if proc is not None:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def open_and_serve(make_job: Callable[[], str], campaign: str, started: float) -> None:
    """With a worker running: the job `make_job` returns (made on it), the users, the campaign; then
    serve until Ctrl-C. The worker is stopped whatever happens."""
    worker = start_worker()
    try:
        job_id = make_job()
        make_users()
        campaign_once(job_id, campaign)
        say(f"set-up took {time.monotonic() - started:.0f} s")
    except BaseException:
        stop(worker)
        raise
    serve(worker)


def demo_job() -> str:
    """The finished job of the demo set, generating it first when there is none."""
    job_id = django_query(
        "from generation.models import GenerationJob\n"
        f"j = GenerationJob.objects.filter(dataset__name={DATASET!r}, status='succeeded').order_by('-id').first()\n"
        "print(j.id if j else '')"
    )
    if not job_id:
        say("generating 200 answers: pre-trained and fine-tuned, one model load (a few minutes on 2 cores)")
        job_id = manage(
            "queue_generation", "--dataset", DATASET, "--base", "smollm2-demo",
            "--adapter", "demo/adapter", "--max-new-tokens", "64", "--wait",
        )
    say(f"generation job {job_id} finished")
    return job_id


def main() -> None:
    started = time.monotonic()
    check_port()
    (ROOT / "var").mkdir(exist_ok=True)
    say("migrating the SQLite database (var/evalsite.sqlite3)")
    manage("migrate", "--noinput")
    import_once("demo/data/eval.jsonl", DATASET, "100 evaluation queries")
    open_and_serve(demo_job, CAMPAIGN, started)


if __name__ == "__main__":
    main()
