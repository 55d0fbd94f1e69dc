# Two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
PORT ?= 8501
SHARED_DATA := $(abspath ../shared/data)
export SKIN_DATA_DIR ?= $(SHARED_DATA)/isic9:$(SHARED_DATA)/isic2017

.PHONY: run test test-fast lint format browser train-default bench-isic2017 bench-cnn bench bench-app bench-scale bench-stress bench-folds bench-similar bench-gate bench-multiview clean

$(RUNTIME): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(DEV): $(RUNTIME) requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

## Start the app on the live model (the committed default on a fresh machine).
run: $(RUNTIME)
	$(VENV)/bin/streamlit run streamlit_app.py --server.port $(PORT)

## Debian's chromium drives the end-to-end tests (Playwright cannot download browsers here); poppler's
## pdftotext and pdftoppm read the PDF reports back in the tests.
browser:
	@command -v chromium >/dev/null && command -v pdftotext >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium poppler-utils >/dev/null; }

## The whole suite: unit, integration (real data when SKIN_DATA_DIR exists) and browser tests.
test: $(DEV) browser
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

test-fast: $(DEV)
	$(PY) -m pytest -m "not e2e and not integration"

lint: $(DEV)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

format: $(DEV)
	$(VENV)/bin/ruff check --fix . && $(VENV)/bin/ruff format .

## Rebuild the committed default model from isic9 + ISIC 2017 training images, never its validation images (scored on).
train-default: $(RUNTIME)
	$(PY) -m skin_model.default_model --data $(SHARED_DATA)/isic9 --data $(SHARED_DATA)/isic2017 \
	  --hold-out $(SHARED_DATA)/isic2017/Validation --out models/default

## The old default (custom CNN, isic9), the new one and the custom CNN retrained on both roots, on ISIC 2017
## validation and the grouped test split, in one run (`bench-cnn` trains that custom CNN first, about 30 minutes).
bench-isic2017: $(DEV)
	$(PY) -m bench.isic2017 --data $(SHARED_DATA)/isic9 --data $(SHARED_DATA)/isic2017 \
	  $(if $(wildcard bench/out/cnn/model.keras),--other "custom CNN on both roots=bench/out/cnn")

bench-cnn: $(RUNTIME)
	$(PY) -m skin_model.default_model --recipe custom-cnn --data $(SHARED_DATA)/isic9 --data $(SHARED_DATA)/isic2017 \
	  --hold-out $(SHARED_DATA)/isic2017/Validation --out bench/out/cnn

## Original recipe vs ours on the same split; writes bench/RESULTS.md (about 2 hours on 2 cores;
## `$(PY) -m bench.run --data DIR --ours committed --original-epochs 6` takes about 25 minutes).
bench: $(DEV)
	$(PY) -m bench.run --data $(SKIN_DATA_DIR)

## Cold start, first upload after fresh starts, upload-to-result latency, and ten concurrent sessions during
## training; appends to bench/RESULTS.md (`--no-training` skips the last, the longest).
bench-app: $(DEV) browser
	$(PY) -m bench.app --data $(SKIN_DATA_DIR)

## Training memory on 2,000 vs 20,000 generated images (~15 min), the SavedModel export vs Keras on the real set,
## and peak memory of one prediction per kind of large upload (~2 min).
bench-scale: $(DEV)
	$(PY) -m bench.stream
	$(PY) -m bench.export --data $(SKIN_DATA_DIR)
	$(PY) -m bench.upload_memory

## Out-of-source: one recipe change at a time, then a source left out of training (~15 min a run on 2 cores).
bench-stress: $(DEV)
	$(PY) -m bench.stress recipes --data $(SKIN_DATA_DIR)
	$(PY) -m bench.stress holdout --data $(SKIN_DATA_DIR) --domain ham10000/vidir_modern
	$(PY) -m bench.stress views --data $(SKIN_DATA_DIR)
	$(PY) -m bench.stress field-of-view --data $(SKIN_DATA_DIR)

## Lesion-grouped 5-fold cross-validation of the default recipe, the previous one and two others, 12 epochs a fold:
## every image, the oldest upload block's ~400 included, scored once by a model that never saw its lesion, as taken
## and re-toned to that block's colours; then external-like draws (~20 min a recipe on 2 cores; the default at its
## full 32 epochs too, ~35 min).
bench-folds: $(DEV)
	$(PY) -m bench.stress folds --data $(SKIN_DATA_DIR) --epochs 12
	$(PY) -m bench.stress folds --data $(SKIN_DATA_DIR) --epochs 12 --only "class x domain weights + mild camera-like augmentation on half"
	$(PY) -m bench.stress folds --data $(SKIN_DATA_DIR) --epochs 12 --only "class x domain weights + mild camera-like augmentation with cooler"
	$(PY) -m bench.stress folds --data $(SKIN_DATA_DIR) --epochs 12 --only "the first model's recipe"
	$(PY) -m bench.stress folds --data $(SKIN_DATA_DIR) --only "the default at full length ("
	$(PY) -m bench.stress folds --data $(SKIN_DATA_DIR) --only "the default at full length with the field-of-view crop"
	$(PY) -m bench.stress live-external --data $(SKIN_DATA_DIR)

## Retrieval of similar cases (live index, then 10,000 and 100,000 generated images) and the PDF report's cost.
bench-similar: $(DEV)
	$(PY) -m bench.similar

## Several pictures of one lesion: combined against one picture, on the grouped test split's HAM10000 lesions.
bench-multiview: $(DEV)
	$(PY) -m bench.multiview

## The not-a-lesion gate: logistic vs network, fitting and held-out negatives (about 6 minutes).
bench-gate: $(DEV)
	$(PY) -m bench.gate --data $(SKIN_DATA_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache  # never var/: it holds the registry and the live model
