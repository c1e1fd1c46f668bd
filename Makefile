# The front door: every target prints what it runs. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python

# Delivery: the Pulumi stacks (dev, prod) and the images in each stack's registry.
STACK ?=
TAG ?=
SERVICES := video-streaming history recommendations
# The Pulumi program runs on the project's Python environment.
PULUMI := PATH="$(CURDIR)/.venv/bin:$$PATH" pulumi
need-stack = $(if $(STACK),,$(error STACK is required, e.g. make $@ STACK=dev))
image-tag = $(or $(TAG),$(shell git rev-parse HEAD))

.PHONY: help setup run dev lint test preview up destroy outputs images
help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## install system packages (as root), start RabbitMQ, build .venv from pinned requirements
	bash scripts/setup

run: setup ## run the whole app on this machine without Docker (Ctrl-C stops it)
	$(PY) -m devtools.run

dev: ## run the app in containers, rebuilt and restarted as files change (docker compose watch)
	docker compose -f compose.yaml up --build --watch

lint: setup ## ruff over the whole repository
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

test: setup lint ## lint, then every test suite (unit, integration, infra, containers, delivery, browser)
	$(PY) -m pytest

preview: ## STACK=dev|prod [TAG=image tag]: pulumi preview --diff of the stack
	$(need-stack)
	$(PULUMI) preview --diff --stack $(STACK)$(if $(TAG), --config flixtube:imageTag=$(TAG))

up: ## STACK=dev|prod [TAG=image tag]: pulumi up (no TAG: the stack file's tag); prod asks first
	$(need-stack)
	@$(if $(TAG),,echo "up: no TAG given: flixtube:imageTag from Pulumi.$(STACK).yaml is used; without one only the platform is deployed")
	bash scripts/confirm-stack $(STACK) up
	$(PULUMI) up --stack $(STACK)$(if $(TAG), --config flixtube:imageTag=$(TAG))

destroy: ## STACK=dev|prod: pulumi destroy, every resource of the stack; prod asks first
	$(need-stack)
	bash scripts/confirm-stack $(STACK) destroy
	$(PULUMI) destroy --stack $(STACK)

outputs: ## STACK=dev|prod: the stack outputs (secrets stay hidden)
	$(need-stack)
	$(PULUMI) stack output --stack $(STACK)

images: ## STACK=dev|prod [TAG=HEAD's SHA]: build and push the images in the stack's registry (az acr build)
	$(need-stack)
	@if [ -z "$(TAG)" ] && ! git diff --quiet HEAD; then \
	  echo "images: uncommitted changes would be built under HEAD's SHA; commit first, or name a TAG" >&2; exit 1; fi
	registry=$$($(PULUMI) stack output registryLoginServer --stack $(STACK)) && registry=$${registry%%.*} && \
	for service in $(SERVICES); do \
	  echo "az acr build --registry $$registry --image $$service:$(image-tag) --file services/$$service/Dockerfile ."; \
	  az acr build --registry "$$registry" --image "$$service:$(image-tag)" --file "services/$$service/Dockerfile" . || exit 1; \
	done
