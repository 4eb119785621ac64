# The README's commands. Everything runs from the project's own .venv; state stays in the tree.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# One deployment, every portfolio of pipelines/portfolios/ (or RISK_PORTFOLIOS): retail_pd (synthetic)
# and german_credit (real, public data) side by side, each under its own asset key prefix.
PORTFOLIO ?= retail_pd
DATA_DIR := data
export DAGSTER_HOME := $(CURDIR)/dagster_home
export RISK_DATA_DIR := $(DATA_DIR)

.PHONY: install system-deps run german-credit portfolio train approve reject rollback canary advance signing-key ledger verify-ledger backfill up down image test dev mlflow-ui check bench lock clean review officer enqueue-review

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

install: $(VENV)/.installed

## Materialise the whole asset graph on the embedded default and print the summary.
run: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pipelines.run --portfolio retail_pd --prepare synthetic $(ARGS)

## The same pipeline on real public data: German credit (1,000 applications over 20 months).
german-credit: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pipelines.run --portfolio german_credit --prepare german_credit --start 2023-01 --end 2024-08

## A new portfolio from a sample landing file: a portfolio file and a contract skeleton to fill in.
## make portfolio NAME=cards_pd SAMPLE=path/to/2024-01.csv [DIR=portfolios/cards_pd]
portfolio: install
	$(BIN)/python -m pipelines.scaffold --name "$(NAME)" --sample "$(SAMPLE)" $(if $(DIR),--dir "$(DIR)")

## Regulatory reports over a range of months: one run for the range (default), one run a month
## (PER_PARTITION=1), or launched into a running deployment through GraphQL (REMOTE=http://127.0.0.1:3000).
FROM ?= 2023-01
TO ?= 2024-12
backfill: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pipelines.backfill --portfolio $(PORTFOLIO) --from $(FROM) --to $(TO) $(if $(PER_PARTITION),--per-partition) $(if $(REMOTE),--remote $(REMOTE) --wait $(or $(WAIT),600))

## The production topology on this machine (127.0.0.1 only): PostgreSQL, MLflow server, gRPC code
## server, daemon, webserver. Idempotent; state in .run/ (RISK_STATE_DIR). `make down` stops it.
up: install
	env -u RISK_DATA_DIR -u DAGSTER_HOME $(BIN)/python -m pipelines.topology up

down:
	$(BIN)/python -m pipelines.topology down

## The tests start PostgreSQL, drive Chromium and start a Docker engine (tests/integration/test_containers.py):
## installed with apt-get when missing (CI starts clean).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
system-deps:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null || \
		{ $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }
	@command -v ssh-keygen >/dev/null || \
		{ $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q openssh-client; }
	@command -v dockerd >/dev/null && command -v docker-compose >/dev/null && command -v debootstrap >/dev/null || \
		{ $(SUDO) apt-get update -q && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io docker-compose debootstrap; }

## Install, then run the test suite (tests choose their own sources and temp folders), one worker
## per core by default: each test module runs whole on one worker (its module fixtures are built once),
## the longest first (tests/durations.json; `make test ARGS=--store-durations` records it again).
TEST_WORKERS ?= $(shell nproc 2>/dev/null || echo 2)
test: install system-deps
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	env -u RISK_DATA_DIR -u RISK_PORTFOLIOS -u RISK_ALLOWED_SIGNERS -u RISK_SERVICE_SIGNING_KEY $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(ARGS)

## Dagster UI + daemon on the same instance, bound to loopback.
dev: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow-ui: install
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(DATA_DIR)/mlflow/mlflow.db --host 127.0.0.1 --port 5000

## Train a new candidate on the current data: it becomes `challenger`, judged against the champion.
train: install
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/python -m pipelines.run --portfolio $(PORTFOLIO) --only training

## Approve and promote a challenger / reject it / roll the champion back (recorded in the ledger).
## Each is signed with the maker's own ed25519 key: KEY=path (default: the development key that
## `make signing-key IDENTITY=<approver>` made under data/keys/), or SIGNATURE=file SIGNED_AT=time
## from `ssh-keygen -Y sign -n risk-governance` over what `python -m pipelines.governance request` prints.
SIGNING = $(if $(KEY),--key "$(KEY)") $(if $(SIGNATURE),--signature "$(SIGNATURE)" --signed-at "$(SIGNED_AT)")
approve: install
	$(BIN)/python -m pipelines.governance approve --portfolio $(PORTFOLIO) --version "$(VERSION)" --approver "$(APPROVER)" --reason "$(REASON)" $(SIGNING)

reject: install
	$(BIN)/python -m pipelines.governance reject --portfolio $(PORTFOLIO) --version "$(VERSION)" --approver "$(APPROVER)" --reason "$(REASON)" $(SIGNING)

rollback: install
	$(BIN)/python -m pipelines.governance rollback --portfolio $(PORTFOLIO) --approver "$(APPROVER)" --reason "$(REASON)" $(if $(VERSION),--version "$(VERSION)") $(SIGNING)

## A challenger's staged rollout (rollout policy): start its canary cell / advance it a step when the
## step's gates hold (the last step promotes it); `make rollback` without VERSION returns the cell to the champion.
canary: install
	$(BIN)/python -m pipelines.governance canary --portfolio $(PORTFOLIO) --version "$(VERSION)" --approver "$(APPROVER)" --reason "$(REASON)" $(SIGNING)

advance: install
	$(BIN)/python -m pipelines.governance advance --portfolio $(PORTFOLIO) --version "$(VERSION)" --approver "$(APPROVER)" --reason "$(REASON)" $(SIGNING)

## A development signing key for IDENTITY (local environment only), listed in data/keys/allowed_signers.
signing-key: install
	$(BIN)/python -m pipelines.governance signing-key --identity "$(IDENTITY)"

## The governance ledger: list its entries / verify its hash chain.
ledger: install
	$(BIN)/python -m pipelines.governance list --portfolio $(PORTFOLIO)

verify-ledger: install
	$(BIN)/python -m pipelines.governance verify --portfolio $(PORTFOLIO)

## Human review of referred and appealed decisions (PORTFOLIO=retail_pd): the review page on
## http://127.0.0.1:$(REVIEW_PORT) (gunicorn, loopback only); `make officer IDENTITY=...` adds a login
## (password from the terminal); `make enqueue-review MONTH=2024-12 [APPEAL=APP-...]` queues a month's referrals.
REVIEW_PORT ?= 8050
review: install
	test -n "$$RISK_REVIEW_SIGNING_KEY" || test -f $(DATA_DIR)/keys/review_service || $(BIN)/python -m pipelines.governance signing-key --identity review_service
	$(BIN)/python -m pipelines.review --portfolio $(PORTFOLIO) serve --port $(REVIEW_PORT)

officer: install
	$(BIN)/python -m pipelines.review --portfolio $(PORTFOLIO) add-officer --identity "$(IDENTITY)"

enqueue-review: install
	$(BIN)/python -m pipelines.review --portfolio $(PORTFOLIO) enqueue --month "$(MONTH)" $(if $(APPEAL),--appeal "$(APPEAL)")

## PII token key rotation: a new key once on stdout (for the secret store, written nowhere); on stderr the
## key ids and every portfolio's stored tokens by key id. ARGS="--report" reports only; ARGS="--portfolio retail_pd".
.PHONY: rotate-pii-key
rotate-pii-key: install
	$(BIN)/python -m pipelines.rotate_pii_key $(ARGS)

check: install
	$(BIN)/dg check defs

bench: install
	$(BIN)/python -m bench.run_all

## The deployment image of deploy/compose.yaml and the Helm values (needs a Docker engine).
## make image [BASE_IMAGE=risk-base:bookworm] [CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt]
## Where no registry is reachable: `make base-image` (debootstrap + docker import, from the host's Debian
## mirror) first, then BASE_IMAGE=$(BASE_TAG); `make pg-image` builds PostgreSQL for compose on it
## (RISK_POSTGRES_IMAGE=$(PG_TAG) docker-compose ...). CA_BUNDLE (a TLS-inspecting proxy's) is a build
## secret, in no layer. deploy/images/docker-build.sh picks a client that builds with BuildKit (DOCKER=...).
BASE_IMAGE ?= python:3.11.7-slim-bookworm
BASE_TAG ?= risk-base:bookworm
PG_TAG ?= risk-postgres:15
BUILD_NETWORK ?= host
IMAGE_VERSION = $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
CA_SECRET = $(if $(CA_BUNDLE),--secret id=ca$(comma)src=$(CA_BUNDLE))
comma := ,
DOCKER_BUILD = deploy/images/docker-build.sh --network $(BUILD_NETWORK) $(CA_SECRET) --build-arg BASE_IMAGE=$(BASE_IMAGE)
.PHONY: base-image pg-image
image:
	$(DOCKER_BUILD) --build-arg RISK_CODE_VERSION=$$(git rev-parse --short=12 HEAD) -t risk-scoring:$(IMAGE_VERSION) .

base-image:
	deploy/images/base-image.sh $(BASE_TAG)

pg-image:
	$(DOCKER_BUILD) -t $(PG_TAG) deploy/images/postgres

## Re-resolve the lock from pyproject.toml's direct pins.
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv && .lockvenv/bin/pip install --quiet -e '.[test]'
	{ echo "# Full pinned lock of the Python stack (pip freeze format, no download addresses)."; echo "# Regenerate: make lock"; \
	  .lockvenv/bin/pip freeze --exclude-editable | grep -v -i '^governed-risk-scoring'; } > requirements.lock
	rm -rf .lockvenv

## Forget all runtime state of the embedded default (data, registry, Dagster runs).
clean:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs dagster_home/.telemetry dagster_home/.nux
