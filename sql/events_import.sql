-- The bulk path: COPY metering.events_import. Rows are checked as they arrive
-- (errors name the COPY line), stored 1,000 at a time by the same store as
-- ingest_batch, duplicates with the same payload skipped, all or nothing.
-- events_import is a table whose access method stores nothing itself.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SET timezone = 'UTC';
SELECT metering.create_customer('c1'), metering.create_customer('c2');
SELECT metering.create_meter('calls', 'count'), metering.create_meter('gb', 'sum', 'gb');
-- a key repeated inside the load and a key already stored are stored once
SELECT metering.ingest('c2', 'calls', 1, '2025-11-01', 'stored');
COPY metering.events_import (customer_id, meter, value, occurred_at, due_at, idempotency_key, properties) FROM STDIN CSV;
c1,calls,1,2025-11-01 10:00:00+00,,k1,
c1,calls,1,2025-11-01 10:00:00+00,,k1,
c2,calls,1,2025-11-01 00:00:00+00,,stored,
c1,gb,1,2025-11-02 00:00:00+00,2025-12-01 00:00:00+00,,"{""gb"": 2.5}"
c2,calls,1,2025-11-03 00:00:00+00,,,
\.
SELECT customer_id, meter, value, occurred_at, due_at, idempotency_key, properties, ingested_at <= now() AS stamped
FROM metering.events ORDER BY event_id;
-- more than one flush (1,000 rows each) in one statement
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at, idempotency_key)
SELECT 'c1', 'calls', 1, '2025-11-05', 'bulk-' || i FROM generate_series(1, 2500) i;
SELECT count(*) FROM metering.events WHERE idempotency_key LIKE 'bulk-%';
-- the same load again: every row is a duplicate, nothing changes
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at, idempotency_key)
SELECT 'c1', 'calls', 1, '2025-11-05', 'bulk-' || i FROM generate_series(1, 2500) i;
SELECT count(*) FROM metering.events;
-- the table reads as empty
SELECT count(*) FROM metering.events_import;

-- Errors: all or nothing, and the COPY line is named
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM STDIN CSV;
c1,calls,1,2025-11-06 00:00:00+00
nobody,calls,1,2025-11-06 00:00:00+00
\.
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM STDIN CSV;
c1,calls,-1,2025-11-06 00:00:00+00
\.
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM STDIN CSV;
c1,calls,1,
\.
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN CSV;
c1,calls,1,2025-11-07 00:00:00+00,k1
\.
COPY metering.events_import (customer_id, meter, value, occurred_at, properties) FROM STDIN CSV;
c1,gb,1,2025-11-06 00:00:00+00,"{""mb"": 1}"
\.
SELECT count(*) FROM metering.events;
-- a failed statement inside a savepoint leaves the rest of the transaction's rows
BEGIN;
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, '2025-11-08');
SAVEPOINT s;
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at)
VALUES ('c1', 'calls', 1, '2025-11-08'), ('nobody', 'calls', 1, '2025-11-08');
ROLLBACK TO s;
COMMIT;
SELECT count(*) FROM metering.events WHERE occurred_at = '2025-11-08';

-- COPY in batches of 1,000 rows (COPY's own multi-insert): a header line, a key
-- repeated across batches (stored once), an error in the second batch names its
-- line and undoes the first batch
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM PROGRAM
$$awk 'BEGIN { print "customer_id,meter,value,occurred_at,idempotency_key"; for (i = 1; i <= 2500; i++) printf "c2,calls,1,2025-11-09 00:00:00+00,many-%d\n", (i == 1700 ? 10 : i) }'$$
CSV HEADER;
SELECT count(*), count(DISTINCT idempotency_key) FROM metering.events WHERE occurred_at = '2025-11-09';
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM PROGRAM
$$awk 'BEGIN { print "customer_id,meter,value,occurred_at,idempotency_key"; for (i = 1; i <= 2500; i++) printf "%s,calls,1,2025-11-10 00:00:00+00,more-%d\n", (i == 1500 ? "nobody" : "c2"), i }'$$
CSV HEADER;
-- another payload for a stored key, in the second batch: the row of the statement is named
COPY metering.events_import (customer_id, meter, value, occurred_at, idempotency_key) FROM PROGRAM
$$awk 'BEGIN { for (i = 1; i <= 2500; i++) printf "c2,calls,1,2025-11-10 00:00:00+00,%s\n", (i == 1600 ? "many-5" : "more-" i) }'$$
CSV;
SELECT count(*) FROM metering.events WHERE occurred_at = '2025-11-10';
-- a COPY rolled back to a savepoint leaves nothing
BEGIN;
SAVEPOINT s;
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM STDIN CSV;
c1,calls,1,2025-11-11 00:00:00+00
\.
ROLLBACK TO s;
COMMIT;
SELECT count(*) FROM metering.events WHERE occurred_at = '2025-11-11';
-- the statement trigger that stores buffered INSERT rows also runs for a replica
SET session_replication_role = replica;
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('c1', 'calls', 1, '2025-11-12');
RESET session_replication_role;
SELECT count(*) FROM metering.events WHERE occurred_at = '2025-11-12';
-- a load over many customers: past a few hundred cache misses the backend reads
-- the customers table at once; unknown customers are still refused, and a customer
-- created afterwards is still found
SELECT count(metering.create_customer('many-' || i)) FROM generate_series(1, 400) i;
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM PROGRAM
$$awk 'BEGIN { for (i = 1; i <= 400; i++) printf "many-%d,calls,1,2025-11-13 00:00:00+00\n", i; print "nobody,calls,1,2025-11-13 00:00:00+00" }'$$
CSV;
BEGIN;
COPY metering.events_import (customer_id, meter, value, occurred_at) FROM PROGRAM
$$awk 'BEGIN { for (i = 400; i >= 1; i--) printf "many-%d,calls,1,2025-11-13 00:00:00+00\n", i }'$$
CSV;
SELECT metering.create_customer('many-401');
INSERT INTO metering.events_import (customer_id, meter, value, occurred_at) VALUES ('many-401', 'calls', 1, '2025-11-13');
COMMIT;
SELECT count(*), count(DISTINCT customer_id) FROM metering.events WHERE occurred_at = '2025-11-13';
-- what needs stored rows is refused; the rest works on an empty table
CREATE INDEX ON metering.events_import (customer_id);
UPDATE metering.events_import SET value = 2;
DELETE FROM metering.events_import;
TRUNCATE metering.events_import;
VACUUM ANALYZE metering.events_import;
SELECT pg_relation_size('metering.events_import') AS size, count(*) AS rows FROM metering.events_import;
