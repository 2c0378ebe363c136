# p4f-bridge: every target creates what it needs; a fresh machine needs only make and Python 3.13.
#   make demo   the main job: the bridge against the local Pay4Feedback sandbox
#   make test   lint, type checks, the test suite and the template checks (what CI runs)
#   make bench  cold starts, warm costs, the API client's rate and the layer's size (bench/)
#   make chaos  the chaos suite in full: faults everywhere, and what became of each event (chaos/)

PYTHON ?= $(shell scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
SAM_ENV := .tools/sam
SAM := $(SAM_ENV)/bin/sam
CHECKOV := .tools/checkov/bin/checkov
export AWS_DEFAULT_REGION ?= us-east-1
# sam build looks for python3.13 on PATH
export PATH := $(dir $(PYTHON)):$(PATH)
# Every handler is type-checked as its own module: all of them are called app.py.
FUNCTION_APPS := $(patsubst functions/%/app.py,-m functions.%.app,$(wildcard functions/*/app.py))

.PHONY: demo test lint pytest template bench chaos clean

$(BIN)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# aws-sam-cli pins its own boto3 and pydantic: it lives in a tool environment of its own.
$(SAM): 
	test -x $(SAM_ENV)/bin/python || $(PYTHON) -m venv $(SAM_ENV)
	$(SAM_ENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_ENV)/bin/python -m pip install --quiet 'aws-sam-cli>=1.130'

# checkov pins its own dependencies too.
$(CHECKOV):
	test -x .tools/checkov/bin/python || $(PYTHON) -m venv .tools/checkov
	.tools/checkov/bin/python -m pip install --quiet --upgrade pip
	.tools/checkov/bin/python -m pip install --quiet 'checkov>=3.2'

demo: $(BIN)/.installed
	$(BIN)/p4f-bridge demo

test: lint pytest template

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy $(FUNCTION_APPS)

# The reward review's browser test drives Debian's Chromium through its chromedriver
# (tests/integration/test_review_browser.py): installed here when missing (CI runs as root).
BROWSER := /usr/bin/chromium /usr/bin/chromedriver
$(BROWSER):
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver

# Four workers on any machine: most of the suite's time is deliberate waits, not CPU. The SAM
# tool environment translates the template for tests/unit/test_template.py.
pytest: $(BIN)/.installed $(BROWSER) $(SAM)
	$(BIN)/pytest -n 4

# The template as written and as CloudFormation gets it (after the SAM transform), with the
# Parameters' defaults and with every optional part switched on (scripts/translate-template
# --every-feature), must pass cfn-lint; checkov may only report what .checkov.yaml explains.
template: $(SAM) $(CHECKOV)
	$(SAM) validate --lint
	$(SAM_ENV)/bin/cfn-lint template.yaml schemas/registry.yaml warehouse/mirror.yaml
	mkdir -p .aws-sam
	$(SAM_ENV)/bin/python scripts/translate-template > .aws-sam/translated.json
	$(SAM_ENV)/bin/python scripts/translate-template --every-feature > .aws-sam/every-feature.json
	# SAM's own policy templates trip two warnings there: SQSPollerPolicy lists the batch
	# actions (W3037) and AWSSecretsManagerGetSecretValuePolicy wraps the ARN in a Sub (W1031).
	$(SAM_ENV)/bin/cfn-lint --ignore-checks W3037 W1031 -- .aws-sam/translated.json .aws-sam/every-feature.json
	$(CHECKOV) -f template.yaml -f warehouse/mirror.yaml -f .aws-sam/every-feature.json --config-file .checkov.yaml
	$(SAM) build

# The handlers run on what sam build makes (.aws-sam/build), as Lambda would run them.
bench: $(BIN)/.installed $(SAM)
	$(SAM) build --parallel
	$(BIN)/python -m bench

# `make test` runs a short run of it (tests/chaos, tests/fuzz); this runs it in full: the
# fuzz tests with 1,500 examples each, then `python -m chaos` (the receiver's every fault at
# every step, the forwarders under faults, the soak on the local stack), ending with the
# accounting table.
chaos: $(BIN)/.installed
	$(BIN)/pytest -n 4 --timeout=1800 --hypothesis-profile=chaos tests/fuzz
	$(BIN)/python -m chaos

clean:
	rm -rf $(VENV) .tools .aws-sam .mypy_cache .ruff_cache .pytest_cache .hypothesis
