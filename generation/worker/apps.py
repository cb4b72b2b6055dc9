from django.apps import AppConfig


class WorkerConfig(AppConfig):
    name = "generation.worker"
    label = "worker"
    verbose_name = "evalsite worker"
