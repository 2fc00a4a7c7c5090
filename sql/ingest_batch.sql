-- metering.ingest_batch: a JSON array of events, all or nothing.
DROP EXTENSION IF EXISTS metering CASCADE;
CREATE EXTENSION metering;
SELECT metering.create_customer('b1'), metering.create_customer('b2');
SELECT metering.create_meter('calls', 'count'), metering.create_meter('tokens', 'sum');

SELECT * FROM metering.ingest_batch('[
  {"customer_id": "b1", "meter": "calls", "occurred_at": "2025-11-01T10:00:00Z", "idempotency_key": "a"},
  {"customer_id": "b1", "meter": "tokens", "value": 250, "occurred_at": "2025-11-01T10:00:00+02:00",
   "idempotency_key": "b", "properties": {"model": "small"}},
  {"customer_id": "b2", "meter": "tokens", "value": "12.5", "occurred_at": "2025-11-01 10:00:00-05",
   "due_at": "2025-12-01T00:00:00Z"},
  {"customer_id": "b1", "meter": "calls", "occurred_at": "2025-11-01T10:00:00Z", "idempotency_key": "a"}
]') ORDER BY ordinal;
SELECT customer_id, meter, value, occurred_at, due_at, idempotency_key, properties
FROM metering.events ORDER BY event_id;

-- replaying the batch stores nothing: every element is a duplicate of its stored event
SELECT ordinal, status FROM metering.ingest_batch('[
  {"customer_id": "b1", "meter": "calls", "occurred_at": "2025-11-01T10:00:00Z", "idempotency_key": "a"},
  {"customer_id": "b1", "meter": "tokens", "value": 250, "occurred_at": "2025-11-01T08:00:00Z",
   "idempotency_key": "b", "properties": {"model": "small"}}
]') ORDER BY ordinal;
SELECT count(*) FROM metering.events;
SELECT * FROM metering.ingest_batch('[]');

-- one bad element rejects the whole call; the error names its ordinal and field
SELECT count(*) AS before FROM metering.events \gset
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls"}, {"customer_id": "zz", "meter": "calls"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls"}, {"customer_id": "b1", "meter": "nope"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls"}, {"meter": "calls"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": 42, "meter": "calls"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "value": -1}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "tokens", "value": "NaN"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "tokens", "value": "many"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "tokens", "value": true}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "occurred_at": "next tuesday"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "occurred_at": "2999-01-01T00:00:00Z"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "idempotency_key": ""}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "idempotency_key": 7}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "properties": [1]}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "customer": "b1"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls"}, "not an object"]');
SELECT * FROM metering.ingest_batch('{"customer_id": "b1", "meter": "calls"}');
SELECT * FROM metering.ingest_batch(NULL);
-- a key reused with another payload, against the store or inside the batch
SELECT * FROM metering.ingest_batch('[{"customer_id": "b1", "meter": "calls", "occurred_at": "2025-11-02T00:00:00Z", "idempotency_key": "a"}]');
SELECT * FROM metering.ingest_batch('[{"customer_id": "b2", "meter": "calls", "occurred_at": "2025-11-02T00:00:00Z", "idempotency_key": "x"},
                                      {"customer_id": "b2", "meter": "calls", "occurred_at": "2025-11-03T00:00:00Z", "idempotency_key": "x"}]');
SELECT count(*) - :before AS added FROM metering.events;
