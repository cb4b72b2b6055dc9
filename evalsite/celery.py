"""The Celery app, configured from Django's settings (the CELERY_* names).

Task modules are found lazily: `autodiscover_tasks()` imports each installed app's `tasks` module
(here generation.worker.tasks) only when a worker starts, so web processes, which publish tasks by
name (generation/publishing.py), never import the worker side and the ML stack behind it."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
