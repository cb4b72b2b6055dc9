"""The worker side: the only code that imports generation.ml (torch, transformers, peft). It loads
models, keeps the process's state in one object, answers chunks, runs fine-tuning and writes the
results back through the ORM. Celery workers import generation.worker.tasks; web processes never do."""
