-- The bulk path: COPY straight into metering.events keeps every rule of ingest.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('k1');
SELECT metering.create_meter('calls', 'count'), metering.create_meter('tokens', 'sum');

COPY metering.events (customer_id, meter, value, occurred_at, idempotency_key, properties) FROM STDIN WITH (FORMAT csv);
k1,calls,1,2025-11-01 10:00:00+00,c-1,{}
k1,tokens,300,2025-11-01 11:00:00+00,c-2,"{""model"": ""small""}"
k1,tokens,20,2025-11-01 12:00:00+00,,
\.
SELECT customer_id, meter, value, occurred_at, due_at, idempotency_key, properties, op
FROM metering.events ORDER BY event_id;

-- replaying a file: rows already stored with the same payload are skipped
COPY metering.events (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
k1,calls,1,2025-11-01 10:00:00+00,c-1
k1,calls,1,2025-11-01 13:00:00+00,c-3
\.
SELECT idempotency_key, count(*) FROM metering.events GROUP BY 1 ORDER BY 1;

-- every rule applies; one bad row rejects the whole COPY
COPY metering.events (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
k1,calls,1,2025-11-01 10:00:00+00
nobody,calls,1,2025-11-01 10:00:00+00
\.
COPY metering.events (customer_id, meter, value, occurred_at, idempotency_key) FROM STDIN WITH (FORMAT csv);
k1,calls,2,2025-11-01 10:00:00+00,c-1
\.
COPY metering.events (customer_id, meter, value, occurred_at) FROM STDIN WITH (FORMAT csv);
k1,calls,-1,2025-11-01 10:00:00+00
\.
COPY metering.events (customer_id, meter, value) FROM STDIN WITH (FORMAT csv);
k1,calls,1
\.
COPY metering.events (customer_id, meter, value, occurred_at, properties) FROM STDIN WITH (FORMAT csv);
k1,calls,1,2025-11-01 10:00:00+00,[]
\.
COPY metering.events (customer_id, meter, value, occurred_at, op) FROM STDIN WITH (FORMAT csv);
k1,calls,1,2025-11-01 10:00:00+00,set
\.
SELECT count(*) FROM metering.events;

-- plain INSERT takes the same path; ingested_at is the transaction's time, unless a
-- superuser gives one: such a row is history being restored, kept as given
-- (sql/security_ingest.sql has the rule for other roles)
INSERT INTO metering.events (customer_id, meter, value, occurred_at)
VALUES ('k1', 'calls', 1, '2025-11-02Z');
INSERT INTO metering.events (customer_id, meter, value, occurred_at, ingested_at)
VALUES ('k1', 'calls', 1, '2025-11-03Z', '2000-01-01Z');
SELECT occurred_at, due_at, ingested_at = '2000-01-01Z' AS ingested_at_kept
FROM metering.events WHERE occurred_at IN ('2025-11-02Z', '2025-11-03Z') ORDER BY occurred_at;
INSERT INTO metering.events (event_id, customer_id, meter, value, occurred_at) VALUES (1, 'k1', 'calls', 1, now());
