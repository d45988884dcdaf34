# Two commands on a fresh machine: `make run` (the app on the shipped samples) and `make test`.
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed
PREFIX ?= $(HOME)/.local
# CI adds `grid` (Ray, about 520 MB) so that the Ray grid test runs there: `make test EXTRAS=train,test,grid`.
EXTRAS ?= train,test

.PHONY: run test params clean-venv wheel smoke-wheel bundle install-desktop

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/paipviewer

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(VENV)/bin/python -m pytest -q

params: $(STAMP)
	$(VENV)/bin/paip-train params

# The wheel and sdist, and a smoke run of the wheel in a fresh virtualenv outside the repository.
wheel: $(STAMP)
	$(VENV)/bin/python -m pip install --quiet build
	$(VENV)/bin/python -m build --outdir dist .

smoke-wheel: wheel
	bash packaging/smoke_wheel.sh dist

# The desktop bundle (PyInstaller, one folder, no TensorFlow) and its smoke test.
bundle: $(STAMP)
	bash packaging/build_bundle.sh

# The .desktop entry, AppStream metadata and icons under XDG paths ($(PREFIX)/share).
install-desktop:
	bash packaging/install_desktop.sh $(PREFIX)

clean-venv:
	rm -rf $(VENV)
