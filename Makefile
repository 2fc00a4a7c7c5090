# metering: PGXS build of the extension, plus the project's own targets.
#   make            build the extension       make install   install it
#   make test       every suite (installs missing packages, starts its own cluster)
#   make demo       a small SaaS example end to end
#   make bench      benchmarks beside their baselines
#   make fuzz       the libFuzzer targets of test/fuzz, FUZZ_SECONDS each (default 300)
EXTENSION = metering
MODULE_big = metering
DATA = $(wildcard src/sql/metering--*.sql)
SRCS = $(wildcard src/core/*.cpp src/pg/*.cpp src/catalog/*.cpp src/ingest/*.cpp src/rating/*.cpp src/invoice/*.cpp)
OBJS = $(SRCS:.cpp=.o)

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -I$(CURDIR)/src
PG_CXXFLAGS = -std=c++17 -fexceptions -Wno-register -Wno-missing-field-initializers
SHLIB_LINK = -lstdc++

# pg_regress suites: one file per feature in sql/ with its expected/ output.
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))

# JIT inlining needs LLVM bitcode of every object; clang would build ours as
# C++14 (LLVM_CXXFLAGS), and nothing here is worth inlining into JIT code.
override with_llvm = no
# Rebuild objects when a header they include changes.
autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

.PHONY: test demo bench deps unit fuzz
deps:
	bash test/lib/deps.sh

unit: deps
	cmake -S . -B build/unit -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build/unit -j2
	cd build/unit && ctest --output-on-failure

test: deps
	bash test/run_all.sh

demo: deps
	bash test/demo/run.sh

bench: deps
	bash test/bench/run.sh

FUZZ_SECONDS ?= 300
fuzz: deps
	bash test/fuzz/run.sh $(FUZZ_SECONDS)
