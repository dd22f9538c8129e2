# Two commands a newcomer needs: `make lab` (the whole job on the built-in lab) and
# `make test` (everything CI runs). Both create .venv and install pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test lint-yaml lint-ansible unit lab lab-down bench dist clean

# The product (src/vllm_fleet, with the test extras) and the lab (lab/, never shipped), editable.
$(STAMP): pyproject.toml lab/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]' -e lab
	touch $@

# The lab tests bring the lab up (and down again if they started it); VLLM_FLEET_REAL_VLLM=1
# installs vLLM's CPU build once into .lab/real-vllm (set it to 0 to skip those tests).
# Three streams side by side (pytest-xdist, tests/conftest.py): the lab tests; the drills on hosts
# 1 and 2 and the router (marker hopper), once the lab has converged; the others with yamllint
# and ansible-lint (tests/unit/test_linters.py).
test: $(STAMP)
	VLLM_FLEET_REAL_VLLM=$${VLLM_FLEET_REAL_VLLM:-1} $(BIN)/pytest -q -p no:cacheprovider -rs --durations=30 \
	  -n 3 --dist loadgroup

lint-yaml: $(STAMP)
	$(BIN)/yamllint -s .

lint-ansible: $(STAMP)
	ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(BIN)/ansible-lint -q

# Builds the lab, then the main job on it: site.yml ends with the on-host smoke tests, whose
# JUnit and JSON results land in artifacts/<host>/.
# LAB_HOSTS=6 adds host 6, a Spark that really is aarch64 (arm64 under qemu-user; slow).
lab: $(STAMP)
	$(BIN)/vllm-fleet-lab up $(if $(LAB_HOSTS),--hosts $(LAB_HOSTS))
	ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(BIN)/ansible-playbook -i .lab/inventory -e @.lab/run-vars.yml site.yml

lab-down: $(STAMP)
	$(BIN)/vllm-fleet-lab down

# The wheel and the collection, as users install them (and execution-environment.yml builds from).
dist: $(STAMP)
	$(BIN)/python -m build --wheel --no-isolation --outdir dist .
	$(BIN)/ansible-galaxy collection build --force --output-path dist .

# BENCH="control availability" runs those parts only (lint, converge, availability, control).
bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH)

clean:
	rm -rf $(VENV) .cache artifacts dist build
