// The rollup worker (src/rollup/worker.cpp): background workers that run a
// rollup step per database every metering.rollup_interval.
#pragma once

namespace metering::rollup {

// The worker's settings; called from _PG_init before the prefix is reserved.
void define_settings();
// Registers one worker per database of metering.rollup_databases, when loaded
// by shared_preload_libraries (otherwise does nothing).
void register_workers();

}  // namespace metering::rollup
