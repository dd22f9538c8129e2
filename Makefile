# Two commands a newcomer needs: `make lab` (the whole job on the built-in lab) and
# `make test` (everything CI runs). Both create .venv and install pinned dependencies first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: test lint-yaml lint-ansible unit lab lab-down bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

test: $(STAMP) lint-yaml lint-ansible
	$(BIN)/pytest -q -p no:cacheprovider

lint-yaml: $(STAMP)
	$(BIN)/yamllint -s .

lint-ansible: $(STAMP)
	ANSIBLE_CONFIG=$(CURDIR)/ansible.cfg $(BIN)/ansible-lint -q

lab: $(STAMP)
	$(BIN)/vllm-fleet lab up
	$(BIN)/ansible-playbook -i .lab/inventory site.yml

lab-down: $(STAMP)
	$(BIN)/vllm-fleet lab down

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) .cache artifacts
