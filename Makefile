# metering: PGXS build of the extension, plus the project's own targets.
#   make            build the extension       make install   install it
#   make test       every suite (installs missing packages, starts its own cluster)
#   make demo       a small SaaS example end to end
#   make bench      benchmarks beside their baselines
#   make fuzz       the libFuzzer targets of test/fuzz, FUZZ_SECONDS each (default 300)
EXTENSION = metering
MODULE_big = metering
EXTVERSION = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" metering.control)

# SQL: the released install script (never edited), the update scripts, and the
# current version's install script, built from the modules in this order.
SQL_MODULES = catalog ingest counters usage aggregates rollups rating invoicing privileges
DATA = $(wildcard src/sql/metering--*.sql)
DATA_built = metering--$(EXTVERSION).sql
SRCS = $(wildcard src/core/*.cpp src/pg/*.cpp src/catalog/*.cpp src/ingest/*.cpp src/rating/*.cpp src/invoice/*.cpp src/rollup/*.cpp)
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
# Rebuild objects when a header they include changes (override: Makefile.global
# empties autodepend after this line unless configure enabled it).
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# One dependency file per source path: Makefile.global names them by file name
# alone, and src/core and src/rating share names (aggregates, periods, pricing).
%.o : %.cpp
	@mkdir -p $(DEPDIR)
	$(COMPILE.cc) -o $@ $< -MMD -MP -MF $(DEPDIR)/$(subst /,_,$*).Po

metering--$(EXTVERSION).sql: $(SQL_MODULES:%=src/sql/modules/%.sql) metering.control
	{ printf '%s\n' '-- metering $(EXTVERSION), built by the Makefile from src/sql/modules/: edit those.' \
	         '\echo Use "CREATE EXTENSION metering" to load this file. \quit'; \
	  for m in $(SQL_MODULES); do echo; cat src/sql/modules/$$m.sql; done; } > $@

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
