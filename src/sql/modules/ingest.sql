-- metering: the event store and the ingest paths (single, batch, COPY, bulk)
-- A module of the install script: the Makefile concatenates src/sql/modules/*.sql,
-- in the order of SQL_MODULES, into metering--<version>.sql.

------------------------------------------------------------------------------
-- Event store (docs/design.md explains the keys and indexes)
------------------------------------------------------------------------------

CREATE TABLE metering.events (
    event_id        bigint GENERATED ALWAYS AS IDENTITY,
    customer_id     text COLLATE "C" NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    value           numeric NOT NULL,
    occurred_at     timestamptz NOT NULL,
    -- 'infinity': not given. Rows are routed to their partition before any trigger
    -- runs, so a row without due_at lands in events_undated, whose trigger stores it
    -- in the month of its occurred_at.
    due_at          timestamptz NOT NULL DEFAULT 'infinity',
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    idempotency_key text COLLATE "C",
    properties      jsonb NOT NULL DEFAULT '{}',
    op              text CHECK (op IN ('increment', 'set')),
    txid            bigint NOT NULL DEFAULT txid_current()
) PARTITION BY RANGE (due_at);
-- One partition per calendar month (UTC), metering.events_YYYY_MM, created on demand
-- by metering._create_event_partition with the primary key (customer_id, meter,
-- due_at, event_id). The parent has no index of its own:
-- pg_dump dumps the partitions (created at run time, not members of the extension)
-- with their indexes, which a partitioned index would already have made on restore.
COMMENT ON TABLE metering.events IS
    'Usage events, append-only, partitioned by due_at month (UTC). Insert through metering.ingest, '
    'metering.ingest_batch, metering.events_import or COPY (customer_id, meter, value, occurred_at, '
    'idempotency_key, properties, due_at); every path applies the same validation and dedup rules.';
COMMENT ON COLUMN metering.events.due_at IS
    'Decides the billing period of the event; defaults to occurred_at.';
COMMENT ON COLUMN metering.events.txid IS
    'The inserting (top-level) transaction, as txid_current(): the rollup step consumes an event once its '
    'transaction is visible in the step''s snapshot (docs/design.md, "Rollups").';
COMMENT ON COLUMN metering.events.op IS
    'Counter operation (increment or set) for events of counter meters; NULL otherwise.';
-- Where a row inserted without due_at lands: the trigger stores it in its month and
-- skips it here, so this partition never holds a row.
CREATE TABLE metering.events_undated PARTITION OF metering.events
    (CONSTRAINT events_undated_holds_nothing CHECK (false))
    FOR VALUES FROM ('infinity') TO (MAXVALUE);
COMMENT ON TABLE metering.events_undated IS
    'Where a row inserted into metering.events without due_at lands; its trigger stores the row in the '
    'partition of its month instead. Never holds a row.';

-- Idempotency keys for all time, apart from the events so that dropping an old
-- partition (metering.drop_events_before) never admits a duplicate again. A key
-- keeps what a repeat is compared with: meter, value, counter operation and
-- instants exactly, the properties as a hash (metering._properties_hash).
CREATE TABLE metering.idempotency_keys (
    event_id        bigint NOT NULL,
    due_at          timestamptz NOT NULL,
    occurred_at     timestamptz NOT NULL,
    properties_hash bigint NOT NULL,
    -- occurred_at was the ingesting transaction's now() and due_at took it: a retry
    -- that lets them default as well differs only in the clock
    times_defaulted boolean NOT NULL,
    customer_id     text COLLATE "C" NOT NULL,
    idempotency_key text COLLATE "C" NOT NULL,
    meter           text COLLATE "C" NOT NULL,
    value           numeric NOT NULL,
    op              text CHECK (op IN ('increment', 'set')),
    PRIMARY KEY (customer_id, idempotency_key)
);
COMMENT ON TABLE metering.idempotency_keys IS
    'Every idempotency key ever used, with what a repeat is compared with (kept when the event''s partition '
    'is dropped): a repeat with the same payload returns event_id, another payload is refused (MT011).';

SELECT pg_catalog.pg_extension_config_dump('metering.customers', '');
SELECT pg_catalog.pg_extension_config_dump('metering.meters', '');
SELECT pg_catalog.pg_extension_config_dump('metering.plans', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events', '');
SELECT pg_catalog.pg_extension_config_dump('metering.events_event_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('metering.idempotency_keys', '');

-- Where the events not rolled up yet are: every (sub)transaction that stores events writes
-- one row per month it wrote to: its transaction id and the first heap block it wrote
-- in that month's partition (an index of the access method metering_writes on each month
-- logs it, whatever path inserts the rows). The rollup step and every read of the
-- tail find the transactions their snapshot did not see here, and read each month from
-- the lowest such block on (a TID range scan) instead of keeping an index on events.txid
-- (11 % of the bulk path, docs/design.md "Rollups"). A row counts only while its
-- partition keeps the file it was written in (filenode): VACUUM FULL or CLUSTER move
-- rows, and the month is then read whole. The step deletes the rows it consumed. Not
-- dumped: the restored rows are written anew, by the restoring transaction.
CREATE TABLE metering.event_writes (
    txid        bigint NOT NULL,
    partition   regclass NOT NULL,
    filenode    oid NOT NULL,
    due_from    timestamptz NOT NULL,
    due_to      timestamptz NOT NULL,
    first_block bigint NOT NULL
);
-- The reads ask for the transactions after a snapshot's xmin: the recent rows only.
CREATE INDEX event_writes_txid ON metering.event_writes (txid);
COMMENT ON TABLE metering.event_writes IS
    'Internal: per statement and month written, the inserting transaction and the first heap block it wrote '
    '(the rollup step and the reads of the tail start there); deleted once rolled up.';
-- The index of each month that writes the log: it stores nothing, and its insert callback
-- is told the block of every row inserted into the month (src/ingest/writes.cpp).
CREATE FUNCTION metering._writes_am_handler(internal) RETURNS index_am_handler
    AS 'MODULE_PATHNAME', 'metering_writes_handler'
    LANGUAGE C;
COMMENT ON FUNCTION metering._writes_am_handler(internal) IS
    'Internal: handler of the index access method metering_writes (the months of metering.events).';
CREATE ACCESS METHOD metering_writes TYPE INDEX HANDLER metering._writes_am_handler;
COMMENT ON ACCESS METHOD metering_writes IS
    'Index access method of the months of metering.events: holds nothing, logs in metering.event_writes '
    'the first block each (sub)transaction writes in the month.';
CREATE OPERATOR CLASS metering._writes_ops DEFAULT FOR TYPE bigint USING metering_writes AS STORAGE bigint;
COMMENT ON OPERATOR CLASS metering._writes_ops USING metering_writes IS
    'Internal: the column a metering_writes index is declared on (events.txid); it reads none.';

------------------------------------------------------------------------------
-- Ingest
------------------------------------------------------------------------------

CREATE FUNCTION metering.ingest(customer_id text, meter text, value numeric DEFAULT 1,
        occurred_at timestamptz DEFAULT now(), idempotency_key text DEFAULT NULL,
        properties jsonb DEFAULT '{}', due_at timestamptz DEFAULT NULL)
    RETURNS bigint
    AS 'MODULE_PATHNAME', 'metering_ingest'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.ingest(text, text, numeric, timestamptz, text, jsonb, timestamptz) IS
    'Records one usage event in the caller''s transaction and returns its event_id; a repeat of '
    '(customer_id, idempotency_key) with the same payload returns the stored event''s id.';

CREATE FUNCTION metering.ingest_batch(events jsonb)
    RETURNS TABLE(ordinal int, event_id bigint, status text)
    AS 'MODULE_PATHNAME', 'metering_ingest_batch'
    LANGUAGE C VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp;
COMMENT ON FUNCTION metering.ingest_batch(jsonb) IS
    'Records a JSON array of events (keys customer_id, meter, value, occurred_at, idempotency_key, '
    'properties, due_at), all or nothing; status is created or duplicate per ordinal (1-based).';

-- The COPY path: COPY metering.events (...) FROM STDIN runs this trigger on every row.
-- Not SECURITY DEFINER: it reads customers, meters and the dedup index through
-- their indexes directly (no SQL), so a loader role with INSERT on events alone
-- has its rows checked. ingest and ingest_batch write without the executor and
-- so never fire it.
CREATE FUNCTION metering._event_before_insert() RETURNS trigger
    AS 'MODULE_PATHNAME', 'metering_event_before_insert'
    LANGUAGE C;
COMMENT ON FUNCTION metering._event_before_insert() IS
    'Internal: validates and deduplicates rows inserted into metering.events directly or by COPY.';
CREATE TRIGGER events_validate BEFORE INSERT ON metering.events
    FOR EACH ROW EXECUTE FUNCTION metering._event_before_insert();

------------------------------------------------------------------------------
-- Partitions: one per month of due_at (UTC), made on demand; retention
------------------------------------------------------------------------------

-- The partition of the month (UTC) holding at, unless metering.events has one:
-- metering.events_YYYY_MM with the primary key (customer_id, meter, due_at,
-- event_id). It is made apart and then attached, which
-- takes SHARE UPDATE EXCLUSIVE on metering.events (ingest and reads go on; CREATE
-- TABLE ... PARTITION OF would take ACCESS EXCLUSIVE). The ingest paths run it in a
-- background worker's transaction of its own (src/ingest/partitions.cpp).
CREATE FUNCTION metering._create_event_partition(at timestamptz) RETURNS regclass
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    lower timestamptz;
    upper timestamptz;
    name text;
    existing regclass;
BEGIN
    IF at IS NULL OR NOT isfinite(at) THEN
        RAISE EXCEPTION 'a partition of metering.events needs a finite instant, not %', coalesce(at::text, 'NULL')
            USING ERRCODE = '22023';
    END IF;
    BEGIN
        lower := date_trunc('month', at, 'UTC');
    EXCEPTION WHEN datetime_field_overflow THEN
        lower := '-infinity';  -- the first month Postgres has begins before its first instant
    END;
    BEGIN  -- months counted in UTC, whatever the session's time zone
        upper := (date_trunc('month', at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    EXCEPTION WHEN datetime_field_overflow THEN
        upper := 'infinity';  -- the last month Postgres has
    END;
    name := 'events_' || to_char(at AT TIME ZONE 'UTC', 'YYYY_MM')
            || CASE WHEN at < '0001-01-01 00:00:00+00' THEN '_bc' ELSE '' END;
    -- Creators take turns; the one that waited finds the partition made.
    LOCK TABLE ONLY metering.events IN SHARE UPDATE EXCLUSIVE MODE;
    SELECT i.inhrelid::regclass INTO existing FROM pg_inherits i
    WHERE i.inhparent = 'metering.events'::regclass AND i.inhrelid = to_regclass('metering.' || quote_ident(name));
    IF existing IS NOT NULL THEN
        RETURN existing;
    END IF;
    EXECUTE format('CREATE TABLE metering.%I (LIKE metering.events INCLUDING CONSTRAINTS INCLUDING STORAGE '
                   'INCLUDING COMPRESSION)', name);
    EXECUTE format('ALTER TABLE metering.%I ADD CONSTRAINT %I PRIMARY KEY (customer_id, meter, due_at, event_id)',
                   name, name || '_pkey');
    -- No index on txid: the rollup step finds new events by metering.event_writes, which
    -- the month's metering_writes index (below) writes.
    EXECUTE format('COMMENT ON TABLE metering.%I IS %L', name,
                   format('Events due in %s (UTC): a partition of metering.events, made on demand.',
                          to_char(at AT TIME ZONE 'UTC', 'YYYY-MM')));
    EXECUTE format('ALTER TABLE metering.events ATTACH PARTITION metering.%I FOR VALUES FROM (%L) TO (%L)',
                   name, lower, upper);
    -- Once a month of metering.events (the access method serves nothing else).
    EXECUTE format('CREATE INDEX %I ON metering.%I USING metering_writes (txid)', name || '_writes', name);
    RETURN format('metering.%I', name)::regclass;
END
$$;
COMMENT ON FUNCTION metering._create_event_partition(timestamptz) IS
    'Internal: makes the partition of metering.events for the month (UTC) of an instant, unless there is one.';

CREATE FUNCTION metering.create_event_partitions(from_ts timestamptz, to_ts timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    month timestamptz;
    made integer := 0;
    before integer;
BEGIN
    IF from_ts IS NULL OR to_ts IS NULL THEN
        RAISE EXCEPTION '% must not be NULL', CASE WHEN from_ts IS NULL THEN 'from_ts' ELSE 'to_ts' END
            USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(from_ts) OR NOT isfinite(to_ts) OR from_ts > to_ts THEN
        RAISE EXCEPTION 'create_event_partitions: from_ts % to to_ts % is not a finite range', from_ts, to_ts
            USING ERRCODE = '22023';
    END IF;
    IF to_ts > from_ts + interval '100 years' THEN
        RAISE EXCEPTION 'create_event_partitions: from_ts % to to_ts % spans more than 100 years', from_ts, to_ts
            USING ERRCODE = '22023', HINT = 'Partitions are made on demand; make ahead only the months to come.';
    END IF;
    IF from_ts < metering._retention_horizon() THEN
        RAISE EXCEPTION 'create_event_partitions: from_ts % is before %, before which the events were dropped',
            from_ts, metering._retention_horizon() USING ERRCODE = 'MT024';
    END IF;
    month := date_trunc('month', from_ts, 'UTC');
    WHILE month < to_ts LOOP
        SELECT count(*) INTO before FROM pg_inherits WHERE inhparent = 'metering.events'::regclass;
        PERFORM metering._create_event_partition(month);
        made := made + (SELECT count(*) FROM pg_inherits WHERE inhparent = 'metering.events'::regclass) - before;
        month := (month AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
    END LOOP;
    RETURN made;
END
$$;
COMMENT ON FUNCTION metering.create_event_partitions(timestamptz, timestamptz) IS
    'Makes the partitions of metering.events for the months (UTC) from from_ts to to_ts ahead of their '
    'events, and returns how many it made (ingest makes a missing one itself; COPY into metering.events '
    'with an explicit due_at needs it made first).';

CREATE FUNCTION metering._retention_horizon() RETURNS timestamptz
    AS 'MODULE_PATHNAME', 'metering_retention_horizon'
    LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION metering._retention_horizon() IS
    'Internal: the instant before which retention dropped the events (-infinity: none were dropped).';

CREATE FUNCTION metering._properties_hash(properties jsonb) RETURNS bigint
    AS 'MODULE_PATHNAME', 'metering_properties_hash'
    LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION metering._properties_hash(jsonb) IS
    'Internal: the fingerprint of an event''s properties kept with its idempotency key (equal for '
    'jsonb-equal values).';

-- The partitions of metering.events and the ranges of due_at they hold.
CREATE FUNCTION metering._event_partitions()
    RETURNS TABLE(partition regclass, from_ts timestamptz, to_ts timestamptz)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT c.oid::regclass,
           CASE WHEN b[1] = 'MINVALUE' THEN '-infinity' ELSE btrim(b[1], '''')::timestamptz END,
           CASE WHEN b[2] = 'MAXVALUE' THEN 'infinity' ELSE btrim(b[2], '''')::timestamptz END
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    CROSS JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') b
    WHERE i.inhparent = 'metering.events'::regclass
$$;
COMMENT ON FUNCTION metering._event_partitions() IS
    'Internal: the partitions of metering.events with the range of due_at each holds.';

-- What later reads need of the months retention dropped, per customer and meter:
-- a counter's value at the horizon (standing for a set at its last dropped
-- operation: counter_value goes on from it) and a time_weighted gauge's last point
-- before it (the value it holds into the first period after the horizon).
CREATE TABLE metering.retained_values (
    customer_id text COLLATE "C" NOT NULL,
    meter       text COLLATE "C" NOT NULL,
    value       numeric NOT NULL,
    due_at      timestamptz NOT NULL,
    occurred_at timestamptz NOT NULL,
    event_id    bigint NOT NULL,
    PRIMARY KEY (customer_id, meter)
);
COMMENT ON TABLE metering.retained_values IS
    'What the months dropped by retention leave for later reads: per customer, a counter''s value at the '
    'horizon (as a set at its last dropped operation) and a time_weighted gauge''s last point before it.';
SELECT pg_catalog.pg_extension_config_dump('metering.retained_values', '');

-- Retention: drops the partitions of the months before `before` (a month's first
-- instant, UTC) once everything they hold is billed for good (docs/design.md,
-- "Retention"). Their idempotency keys stay; events due before `before` are refused
-- from then on (events_retired stands for the dropped months).
CREATE FUNCTION metering.drop_events_before(before timestamptz) RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts regclass[];
    part regclass;
    months integer;
    open_line record;
BEGIN
    IF before IS NULL THEN
        RAISE EXCEPTION 'before must not be NULL' USING ERRCODE = '22004';
    END IF;
    IF NOT isfinite(before) OR before <> date_trunc('month', before, 'UTC') THEN
        RAISE EXCEPTION 'drop_events_before: % is not the first instant of a month (UTC)', before
            USING ERRCODE = '22023', HINT = 'The partitions hold calendar months of due_at in UTC.';
    END IF;
    IF before > date_trunc('month', now(), 'UTC') THEN
        RAISE EXCEPTION 'drop_events_before: % is after the start of this month', before
            USING ERRCODE = '22023', HINT = 'Only past months can be billed for good.';
    END IF;
    IF before <= metering._retention_horizon() THEN
        RETURN 0;  -- dropped already
    END IF;
    -- Every committed event rolled up; the step's lock is kept to the end, so no close
    -- and no other step runs meanwhile.
    PERFORM metering._rollup_step();
    IF EXISTS (SELECT FROM metering._event_partitions() p WHERE p.from_ts < before AND p.to_ts > before) THEN
        RAISE EXCEPTION 'drop_events_before: a partition of metering.events holds events due before and after %',
            before USING ERRCODE = '55000';
    END IF;
    SELECT array_agg(p.partition ORDER BY p.from_ts),
           count(*) FILTER (WHERE p.partition::text <> 'metering.events_retired')
    INTO parts, months
    FROM metering._event_partitions() p WHERE p.to_ts <= before;
    -- No event can be added to those months any more (an insert in progress is waited
    -- for), and whatever committed into them meanwhile is rolled up too.
    FOREACH part IN ARRAY coalesce(parts, '{}') LOOP
        EXECUTE format('LOCK TABLE %s IN SHARE MODE', part);
    END LOOP;
    PERFORM metering._rollup_step();
    -- Every billing period that began before `before` and has usage is invoiced by a
    -- live regular invoice, with no late usage waiting for the next one: what was billed
    -- is final, and reads of those periods come from the rollups.
    SELECT u.subscription_id, u.period_start, u.meter INTO open_line
    FROM metering.usage_rollups u
    WHERE u.period_start < before
      AND (NOT EXISTS (SELECT FROM metering.invoices i
                       WHERE i.subscription_id = u.subscription_id AND i.kind = 'regular'
                         AND i.status <> 'void' AND i.period_start = u.period_start)
           OR EXISTS (SELECT FROM metering.late_groups l
                      WHERE l.subscription_id = u.subscription_id AND l.period_start = u.period_start
                        AND l.meter = u.meter))
    ORDER BY u.period_start LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'drop_events_before: the usage of meter "%" in the period of subscription % from % is not billed for good',
            open_line.meter, open_line.subscription_id, open_line.period_start
            USING ERRCODE = '55000',
                  HINT = 'Close the periods first (metering.close_periods): retention drops only invoiced months.';
    END IF;
    -- Custom and time_weighted quantities are read from the events: a period of theirs
    -- must not lose part of its events (a late event in its other part would be billed
    -- against what is left).
    SELECT s.subscription_id, g.period_start, m.code AS meter, m.aggregation INTO open_line
    FROM metering.subscriptions s
    JOIN metering.customers c ON c.customer_id = s.customer_id
    JOIN metering.plans pl ON pl.code = s.plan_code
    JOIN metering.charges ch ON ch.plan_code = s.plan_code
    JOIN metering.meters m ON m.code = ch.meter AND m.kind = 0
    CROSS JOIN LATERAL (SELECT metering._period_of(s.billing_anchor, pl.billing_interval, c.timezone,
                                                   s.starts_at, s.ends_at, before) AS period_start) g
    WHERE g.period_start < before
      AND EXISTS (SELECT FROM metering.events e
                  WHERE e.customer_id = s.customer_id AND e.meter = m.code
                    AND e.due_at >= g.period_start AND e.due_at < before)
    ORDER BY s.subscription_id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'drop_events_before: the period of subscription % from % reaches across %, and its % meter "%" is read from the events',
            open_line.subscription_id, open_line.period_start, before, open_line.aggregation, open_line.meter
            USING ERRCODE = '55000', HINT = 'Drop the months before the start of that period instead.';
    END IF;
    -- What later reads need: each counter's value at `before`, each gauge's last point.
    WITH dropped AS (
        SELECT e.customer_id, e.meter, e.op, e.value, e.due_at, e.event_id
        FROM metering.events e JOIN metering.meters m ON m.code = e.meter AND m.aggregation = 'counter'
        WHERE e.due_at < before
    ),
    last_set AS (
        SELECT DISTINCT ON (d.customer_id, d.meter) d.customer_id, d.meter, d.due_at, d.event_id
        FROM dropped d WHERE d.op = 'set' ORDER BY d.customer_id, d.meter, d.due_at DESC, d.event_id DESC
    ),
    counters AS (
        SELECT d.customer_id, d.meter, bool_or(ls.event_id IS NOT NULL) AS has_set,
               coalesce(sum(d.value) FILTER (WHERE ls.event_id IS NULL
                                                OR (d.due_at, d.event_id) >= (ls.due_at, ls.event_id)), 0) AS since_set,
               (array_agg(d.due_at ORDER BY d.due_at DESC, d.event_id DESC))[1] AS due_at,
               (array_agg(d.event_id ORDER BY d.due_at DESC, d.event_id DESC))[1] AS event_id
        FROM dropped d LEFT JOIN last_set ls ON ls.customer_id = d.customer_id AND ls.meter = d.meter
        GROUP BY d.customer_id, d.meter
    )
    INSERT INTO metering.retained_values AS r (customer_id, meter, value, due_at, occurred_at, event_id)
    SELECT c.customer_id, c.meter,
           c.since_set + CASE WHEN c.has_set THEN 0
                              ELSE coalesce((SELECT o.value FROM metering.retained_values o
                                             WHERE o.customer_id = c.customer_id AND o.meter = c.meter), 0) END,
           c.due_at, c.due_at, c.event_id
    FROM counters c
    ON CONFLICT (customer_id, meter) DO UPDATE
        SET value = excluded.value, due_at = excluded.due_at, occurred_at = excluded.occurred_at,
            event_id = excluded.event_id;
    INSERT INTO metering.retained_values AS r (customer_id, meter, value, due_at, occurred_at, event_id)
    SELECT DISTINCT ON (e.customer_id, e.meter) e.customer_id, e.meter,
           CASE WHEN m.value_property IS NULL THEN e.value ELSE (e.properties ->> m.value_property)::numeric END,
           e.due_at, e.occurred_at, e.event_id
    FROM metering.events e JOIN metering.meters m ON m.code = e.meter AND m.aggregation = 'time_weighted'
    WHERE e.due_at < before AND (m.filter IS NULL OR e.properties @> m.filter)
    ORDER BY e.customer_id, e.meter, e.due_at DESC, e.event_id DESC
    ON CONFLICT (customer_id, meter) DO UPDATE
        SET value = excluded.value, due_at = excluded.due_at, occurred_at = excluded.occurred_at,
            event_id = excluded.event_id;
    -- The months go; events_retired stands for them, so that an event due before
    -- `before` is refused (after dedup: its key may be a dropped event's).
    FOREACH part IN ARRAY coalesce(parts, '{}') LOOP
        EXECUTE format('DROP TABLE %s', part);
    END LOOP;
    EXECUTE 'CREATE TABLE metering.events_retired (LIKE metering.events INCLUDING CONSTRAINTS INCLUDING STORAGE '
            'INCLUDING COMPRESSION, CONSTRAINT events_retired_holds_nothing CHECK (false))';
    EXECUTE format('COMMENT ON TABLE metering.events_retired IS %L',
                   format('Stands for the months before %s, which metering.drop_events_before dropped: '
                          'an event due then is refused. Never holds a row.', before));
    EXECUTE format('ALTER TABLE metering.events ATTACH PARTITION metering.events_retired '
                   'FOR VALUES FROM (MINVALUE) TO (%L)', before);
    RETURN months;
END
$$;
COMMENT ON FUNCTION metering.drop_events_before(timestamptz) IS
    'Retention: drops the partitions of metering.events for the months before `before` (first instant of a '
    'month, UTC) once every billing period that began before it is invoiced for good; returns how many months '
    'it dropped. Idempotency keys are kept for all time; events due before it are refused from then on.';

-- The bulk path: COPY metering.events_import (...) FROM STDIN. A table whose access
-- method stores nothing itself: COPY keeps its multi-insert buffering, the CHECK
-- constraint validates each row as it arrives (errors name the COPY line), and each
-- batch of up to 1,000 rows goes through the same store as ingest_batch
-- (src/ingest/import.cpp).
CREATE FUNCTION metering._import_am_handler(internal) RETURNS table_am_handler
    AS 'MODULE_PATHNAME', 'metering_import_am_handler'
    LANGUAGE C;
COMMENT ON FUNCTION metering._import_am_handler(internal) IS
    'Internal: handler of the table access method metering_import (metering.events_import).';
CREATE ACCESS METHOD metering_import TYPE TABLE HANDLER metering._import_am_handler;
COMMENT ON ACCESS METHOD metering_import IS
    'Table access method of metering.events_import: rows inserted are stored as events in '
    'metering.events (validated, deduplicated); the table itself holds none.';
CREATE FUNCTION metering._import_check(customer_id text, meter text, value numeric, occurred_at timestamptz,
        due_at timestamptz, idempotency_key text, properties jsonb) RETURNS boolean
    AS 'MODULE_PATHNAME', 'metering_import_check'
    LANGUAGE C STABLE;
COMMENT ON FUNCTION metering._import_check(text, text, numeric, timestamptz, timestamptz, text, jsonb) IS
    'Internal: CHECK constraint of metering.events_import; applies every rule of ingest to a row '
    '(raises the error, never returns false). Answers only roles with INSERT on events_import.';
CREATE TABLE metering.events_import (
    customer_id text,
    meter text,
    value numeric,
    occurred_at timestamptz,
    due_at timestamptz,
    idempotency_key text,
    properties jsonb,
    CONSTRAINT events_import_valid CHECK (metering._import_check(customer_id, meter, value, occurred_at,
                                                                 due_at, idempotency_key, properties))
) USING metering_import;
COMMENT ON TABLE metering.events_import IS
    'Bulk ingest target: COPY metering.events_import (customer_id, meter, value, occurred_at, due_at, '
    'idempotency_key, properties) FROM ...; every rule of ingest applies, duplicates with the same '
    'payload are skipped, and the statement is all or nothing. Reading it returns no rows.';
COMMENT ON CONSTRAINT events_import_valid ON metering.events_import IS
    'Validates each row as it arrives, so that an error names the COPY line.';
CREATE FUNCTION metering._import_flush() RETURNS trigger
    AS 'MODULE_PATHNAME', 'metering_import_flush'
    LANGUAGE C;
COMMENT ON FUNCTION metering._import_flush() IS
    'Internal: stores the rows an INSERT into events_import left buffered at the end of the statement.';
CREATE TRIGGER import_flush AFTER INSERT ON metering.events_import
    FOR EACH STATEMENT EXECUTE FUNCTION metering._import_flush();
-- Also under session_replication_role = replica: buffered rows must not be dropped.
ALTER TABLE metering.events_import ENABLE ALWAYS TRIGGER import_flush;

CREATE FUNCTION metering._refuse_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF metering._internal_change_active() THEN
        RETURN NULL;  -- one of metering's own functions (void_invoice, approve_invoice, ...)
    END IF;
    RAISE EXCEPTION '% of % is not allowed: %', TG_OP, TG_TABLE_NAME, TG_ARGV[0]
        USING ERRCODE = 'MT017', HINT = TG_ARGV[1];
END
$$;
COMMENT ON FUNCTION metering._refuse_change() IS
    'Internal: refuses changes to append-only or referenced rows.';
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.events
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'events are append-only', 'Record a correction as a new event.');
CREATE TRIGGER customers_keep BEFORE DELETE OR TRUNCATE ON metering.customers
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'customers are referenced by their events', 'End the customer''s subscriptions instead.');
CREATE TRIGGER customers_keep_id BEFORE UPDATE OF customer_id ON metering.customers
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'customer_id is referenced by events', 'Create a new customer instead.');
CREATE TRIGGER meters_keep BEFORE UPDATE OR DELETE OR TRUNCATE ON metering.meters
    FOR EACH STATEMENT EXECUTE FUNCTION metering._refuse_change(
        'meters are referenced by their events', 'Create a new meter instead.');
