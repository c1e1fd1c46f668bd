# The front door: every target prints what it runs. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: help setup run test lint
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## install system packages (as root), start RabbitMQ, build .venv from pinned requirements
	bash scripts/setup

run: setup ## run the whole app on this machine without Docker (Ctrl-C stops it)
	$(PY) -m devtools.run

lint: setup ## ruff over the whole repository
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint ## lint, then every test suite (unit, integration, infra, containers, delivery, browser)
	$(PY) -m pytest
