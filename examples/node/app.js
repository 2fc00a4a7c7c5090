// Recording usage from a Node.js application with node-postgres (pg).
//
// The connection comes from the usual libpq environment (PGHOST, PGPORT, PGUSER,
// PGDATABASE). Run it against an empty database as a superuser, who may create
// the extension: npm ci && node app.js
import pg from 'pg';

class PaymentDeclined extends Error {}

// BEGIN ... COMMIT around fn, ROLLBACK if it throws: node-postgres's own pattern.
async function inTransaction(client, fn) {
  await client.query('BEGIN');
  try {
    const result = await fn();
    await client.query('COMMIT');
    return result;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

// What a migration does once: the extension, the app's table, a priced plan.
async function setup(client) {
  await inTransaction(client, async () => {
    await client.query('CREATE EXTENSION IF NOT EXISTS metering');
    await client.query(`
      CREATE TABLE orders (
        request_id  text PRIMARY KEY,   -- the client's request id: retries reuse it
        customer_id text NOT NULL,
        total       numeric NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now())`);
    await client.query(`SELECT metering.create_customer('acme', 'Acme Corp')`);
    await client.query(`SELECT metering.create_meter('orders', 'count')`);
    await client.query(`SELECT metering.create_meter('pages', 'sum')`);
    await client.query(`SELECT metering.create_plan('pro', 'USD', '1 month', 49)`);
    await client.query(`SELECT metering.add_charge('pro', 'orders',
                          '{"model": "per_unit", "unit_price": "0.10"}')`);
    await client.query(`SELECT metering.add_charge('pro', 'pages',
                          '{"model": "per_unit", "unit_price": "0.01", "free_units": 100}')`);
    await client.query(`SELECT metering.subscribe('acme', 'pro', date_trunc('month', now()))`);
  });
}

// The app's own work and its usage in one transaction: both commit, or neither.
async function placeOrder(client, requestId, customerId, total, { paymentOk = true } = {}) {
  return inTransaction(client, async () => {
    // A retried request finds its order already there and stores nothing new.
    await client.query(
      `INSERT INTO orders (request_id, customer_id, total) VALUES ($1, $2, $3)
       ON CONFLICT (request_id) DO NOTHING`,
      [requestId, customerId, total]);
    // The request id is the idempotency key, so a retry returns the stored event.
    const { rows } = await client.query(
      `SELECT metering.ingest(customer_id, 'orders', occurred_at => created_at,
                              idempotency_key => request_id) AS event_id
       FROM orders WHERE request_id = $1`,
      [requestId]);
    if (!paymentOk) throw new PaymentDeclined('payment declined');
    return rows[0].event_id; // bigint arrives as a string: compare it, don't do math on it
  });
}

// One call for many events, all or nothing; repeated keys come back as duplicates.
// Returns the event ids in the order of the elements.
async function sendBatch(client, events) {
  // JSON.stringify: pg would send a JS array as a Postgres array, not as jsonb.
  const { rows } = await client.query(
    'SELECT ordinal, event_id, status FROM metering.ingest_batch($1) ORDER BY ordinal',
    [JSON.stringify(events)]);
  for (const row of rows) console.log(`element ${row.ordinal}: ${row.status}`);
  return rows.map((row) => row.event_id);
}

const yesNo = (ok) => (ok ? 'yes' : 'NO');

const client = new pg.Client();
await client.connect();
try {
  console.log("== setup: the extension, the app's orders table, a customer on a plan");
  await setup(client);

  console.log('== an order and its usage commit together');
  const eventId = await placeOrder(client, 'order-1001', 'acme', 25);
  console.log('order-1001: order and usage committed');

  console.log('== a retry of the same request returns the same event');
  const retried = await placeOrder(client, 'order-1001', 'acme', 25);
  console.log(`order-1001 again: same event id: ${yesNo(retried === eventId)}`);

  console.log('== a failed order rolls back its usage with it');
  try {
    await placeOrder(client, 'order-1002', 'acme', 90, { paymentOk: false });
  } catch (err) {
    if (!(err instanceof PaymentDeclined)) throw err;
    console.log(`order-1002 failed: ${err.message}`);
  }
  const orders = await client.query(`SELECT count(*) FROM orders WHERE request_id = 'order-1002'`);
  const events = await client.query(
    `SELECT count(*) FROM metering.events WHERE idempotency_key = 'order-1002'`);
  console.log(`orders stored for order-1002: ${orders.rows[0].count}, events: ${events.rows[0].count}`);

  console.log('== a batch of usage from a background job');
  const batch = [
    { customer_id: 'acme', meter: 'pages', value: 300, idempotency_key: 'scan-1' },
    { customer_id: 'acme', meter: 'pages', value: 250, idempotency_key: 'scan-2' },
  ];
  const first = await sendBatch(client, batch);

  console.log('== the batch sent again, with one more element');
  batch.push({ customer_id: 'acme', meter: 'pages', value: 150, idempotency_key: 'scan-3' });
  const again = await sendBatch(client, batch);
  const sameIds = again.slice(0, 2).every((id, i) => id === first[i]);
  console.log(`duplicates return the first send's event ids: ${yesNo(sameIds)}`);

  console.log('== invoice lines of the open period');
  const lines = await client.query(`
    SELECT kind, description, quantity, amount, currency
    FROM metering.invoice_lines
    WHERE customer_id = 'acme' AND now() < period_end
    ORDER BY kind, meter NULLS FIRST`);
  // numeric arrives as a string, exact: money is never a float
  for (const l of lines.rows) {
    console.log(`${l.kind.padEnd(10)}${l.description.padEnd(20)}${l.quantity.padStart(6)}` +
                `${l.amount.padStart(9)} ${l.currency}`);
  }
} finally {
  await client.end();
}
