-- metering 0.1.0 -> 0.2.0. Every schema change since 0.1.0, in the order it landed;
-- the same change is made in src/sql/modules/ (the fresh install), and
-- test/upgrade/upgrade.sh checks that both give the same catalog.
\echo Use "ALTER EXTENSION metering UPDATE TO '0.2.0'" to load this file. \quit
