# seamountae: `make demo` runs the whole pipeline on sample_data, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo_output

.PHONY: install demo demo-run test test-slow benchmark clean

$(BIN)/seamountae: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch first: a plain `torch` requirement would pull a several-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,dask,plot]'
	touch $@

install: $(BIN)/seamountae

demo: install
	mkdir -p $(DEMO)
	$(BIN)/seamountae tile sample_data/azores_west.nc --catalogue sample_data/azores_west_seamounts.csv -o $(DEMO)/patches.nc --overwrite
	$(BIN)/seamountae train $(DEMO)/patches.nc -o $(DEMO)/model.pt --epochs 30 --seed 0 --overwrite
	$(BIN)/seamountae score sample_data/azores_east.nc --model $(DEMO)/model.pt -o $(DEMO)/score.nc --overwrite
	$(BIN)/seamountae detect $(DEMO)/score.nc -o $(DEMO)/detections.nc --overwrite
	$(BIN)/seamountae export $(DEMO)/detections.nc -o $(DEMO)/seamounts.geojson --overwrite
	@$(BIN)/python -c "import json; n = len(json.load(open('$(DEMO)/seamounts.geojson'))['features']); print(f'catalogue: $(DEMO)/seamounts.geojson ({n} seamounts)')"
	$(BIN)/seamountae evaluate $(DEMO)/seamounts.geojson sample_data/azores_east_seamounts.csv --min-height 500

# The same as `demo`, from one config file: skips stages that are up to date, also draws demo_output/map.png.
demo-run: install
	$(BIN)/seamountae run configs/demo.toml

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

benchmark: install
	$(BIN)/python benchmarks/quality.py

clean:
	rm -rf $(VENV) $(DEMO) *.egg-info .pytest_cache
