-- DROP EXTENSION leaves nothing behind; CREATE EXTENSION works again after it.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('d1'), metering.create_meter('calls', 'count');
SELECT metering.ingest('d1', 'calls') > 0 AS cached_then_dropped;
DROP EXTENSION metering;
SELECT count(*) AS schemas FROM pg_namespace WHERE nspname = 'metering';
SELECT count(*) AS functions FROM pg_proc WHERE proname LIKE '%metering%' OR prosrc LIKE 'metering_%';
SELECT count(*) AS relations FROM pg_class WHERE relname IN ('events', 'customers', 'meters', 'plans', 'events_import');
SELECT count(*) AS access_methods FROM pg_am WHERE amname = 'metering_import';
-- the backend's caches must not outlive the extension
CREATE EXTENSION metering;
SELECT metering.ingest('d1', 'calls');
SELECT metering.create_customer('d1'), metering.create_meter('calls', 'count');
SELECT metering.ingest('d1', 'calls') > 0 AS works_again;
