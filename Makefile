# Two commands set everything up on a fresh machine:
#   make run   install, prepare the embedding model, build or refresh the index, start the web app
#   make test  install, prepare the model, check the corpus, run every test
# Both are idempotent: a second run only does what changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install model index check lint bench browser clean

run: index
	$(BIN)/kb serve

test: model browser
	$(BIN)/kb check
	$(BIN)/python -m pytest -q

install: $(STAMP)

# torch first and pinned: anything that lets pip choose torch by itself pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

model: install
	$(BIN)/kb prepare-model

index: model
	$(BIN)/kb build

check: install
	$(BIN)/kb check

lint: install
	$(BIN)/ruff check kb app tests scripts

bench: index
	$(BIN)/python scripts/bench.py

# Debian's Chromium for the end-to-end tests (no browser download by Playwright).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { echo "Installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	    (sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); }
	@# A CJK font, so screenshots of the Chinese UI show characters instead of boxes.
	@fc-list 2>/dev/null | grep -qiE 'wqy|noto.*cjk|droid.*fallback' || \
	  { echo "Installing a Chinese font for the browser screenshots"; \
	    (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null) || \
	    (sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null) || true; }

clean:
	rm -rf $(VENV) index/builds index/CURRENT index/cache index/.build.lock
