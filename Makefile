# seamountae: `make demo` runs the whole pipeline on sample_data, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo_output

.PHONY: install demo demo-run test test-slow benchmark builtin-model clean

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
	$(BIN)/seamountae find sample_data/azores_east.nc -o $(DEMO)/found.geojson --overwrite
	@$(BIN)/python -c "import json; n = len(json.load(open('$(DEMO)/found.geojson'))['features']); print(f'catalogue (built-in model): $(DEMO)/found.geojson ({n} seamounts)')"
	$(BIN)/seamountae tile sample_data/azores_west.nc --catalogue sample_data/azores_west_seamounts.csv -o $(DEMO)/patches.nc --overwrite
	$(BIN)/seamountae train $(DEMO)/patches.nc -o $(DEMO)/model.pt --epochs 30 --seed 0 --overwrite
	$(BIN)/seamountae score sample_data/azores_east.nc --model $(DEMO)/model.pt -o $(DEMO)/score.nc --overwrite
	$(BIN)/seamountae detect $(DEMO)/score.nc -o $(DEMO)/detections.nc --overwrite
	$(BIN)/seamountae export $(DEMO)/detections.nc -o $(DEMO)/seamounts.geojson --overwrite
	@$(BIN)/python -c "import json; n = len(json.load(open('$(DEMO)/seamounts.geojson'))['features']); print(f'catalogue: $(DEMO)/seamounts.geojson ({n} seamounts)')"
	$(BIN)/seamountae evaluate $(DEMO)/seamounts.geojson sample_data/azores_east_seamounts.csv --min-height-m 500

# The same as `demo`, from one config file: skips stages that are up to date, also draws demo_output/map.png.
demo-run: install
	$(BIN)/seamountae run configs/demo.toml

test: install
	$(BIN)/python -m pytest

test-slow: install
	$(BIN)/python -m pytest -m slow

benchmark: install
	$(BIN)/python benchmarks/quality.py --readme

# The model `find` and `score` use without --model, rebuilt from configs/builtin.toml: the Azores of
# sample_data/, the 12 real 15″ grids of DATA/gebco15s with catalogued seamounts to train on (Kim &
# Wessel and Yesson et al. joined, as distributed in DATA/catalogues; the Guinea plain's one lies at
# its edge) and two synthetic grids. DATA is the real
# data folder, not part of a clone: the built model is. One torch thread: the same bytes on every
# run of the same kind of machine.
BUILTIN := seamountae/models/builtin.pt
BUILD := build/builtin
DATA ?= ../shared/data
WORLD := gebco2024_15s_ryukyu_n33_s28_w128_e134.nc gebco15s_9.24_167.3.tif gebco15s_-3.16_-80.7.tif \
	gebco15s_-3.69_151.5.tif gebco15s_-8.61_124.9.tif gebco15s_-8.67_159.3.tif gebco15s_10.43_75.75.tif \
	gebco15s_12.13_53.31.tif gebco15s_15.82_-61.3.tif gebco15s_20.95_-156.0.tif gebco15s_3.47_73.43.tif \
	gebco15s_6.57_125.8.tif
CENSUS := --catalogue $(DATA)/catalogues/KWSMTSv01.txt --catalogue $(DATA)/catalogues/yesson2019_seamounts.csv
PATCHES := azores_west azores_east $(basename $(WORLD)) plain fabric
builtin-model: install
	@test -d $(DATA)/gebco15s -a -d $(DATA)/catalogues || { echo "make builtin-model: $(DATA) has no gebco15s/ and catalogues/; give the real data folder: make builtin-model DATA=PATH"; exit 1; }
	rm -rf $(BUILD) && mkdir -p $(BUILD)
	$(BIN)/seamountae -q synth -o $(BUILD)/plain --seed 2000 --scenario plain
	$(BIN)/seamountae -q synth -o $(BUILD)/fabric --seed 2001 --scenario fabric
	$(BIN)/seamountae tile sample_data/azores_west.nc --catalogue sample_data/azores_west_seamounts.csv --config configs/builtin.toml -o $(BUILD)/azores_west.nc
	$(BIN)/seamountae tile sample_data/azores_east.nc --catalogue sample_data/azores_east_seamounts.csv --config configs/builtin.toml -o $(BUILD)/azores_east.nc
	for g in $(WORLD); do $(BIN)/seamountae -q tile $(DATA)/gebco15s/$$g $(CENSUS) --config configs/builtin.toml -o $(BUILD)/$${g%.*}.nc || exit 1; done
	$(BIN)/seamountae tile $(BUILD)/plain/grid.nc --catalogue $(BUILD)/plain/truth.csv --config configs/builtin.toml -o $(BUILD)/plain.nc
	$(BIN)/seamountae tile $(BUILD)/fabric/grid.nc --catalogue $(BUILD)/fabric/truth.csv --config configs/builtin.toml -o $(BUILD)/fabric.nc
	$(BIN)/seamountae train $(addprefix $(BUILD)/,$(addsuffix .nc,$(PATCHES))) --config configs/builtin.toml --threads 1 -o $(BUILTIN) --overwrite
	$(BIN)/seamountae models

clean:
	rm -rf $(VENV) $(DEMO) build *.egg-info .pytest_cache
