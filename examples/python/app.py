"""Recording usage from a Python application with psycopg 3.

The connection comes from the usual libpq environment (PGHOST, PGPORT, PGUSER,
PGDATABASE). Run it against an empty database as a superuser, who may create
the extension: python3 app.py
"""
import psycopg
from psycopg.types.json import Jsonb


class PaymentDeclined(Exception):
    pass


def setup(conn):
    """What a migration does once: the extension, the app's table, a priced plan."""
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS metering")
        conn.execute("""
            CREATE TABLE orders (
                request_id  text PRIMARY KEY,   -- the client's request id: retries reuse it
                customer_id text NOT NULL,
                total       numeric NOT NULL,
                created_at  timestamptz NOT NULL DEFAULT now())""")
        conn.execute("SELECT metering.create_customer('acme', 'Acme Corp')")
        conn.execute("SELECT metering.create_meter('orders', 'count')")
        conn.execute("SELECT metering.create_meter('pages', 'sum')")
        conn.execute("SELECT metering.create_plan('pro', 'USD', '1 month', 49)")
        conn.execute("""SELECT metering.add_charge('pro', 'orders',
                            '{"model": "per_unit", "unit_price": "0.10"}')""")
        conn.execute("""SELECT metering.add_charge('pro', 'pages',
                            '{"model": "per_unit", "unit_price": "0.01", "free_units": 100}')""")
        conn.execute("SELECT metering.subscribe('acme', 'pro', date_trunc('month', now()))")


def place_order(conn, request_id, customer_id, total, payment_ok=True):
    """The app's own work and its usage in one transaction: both commit, or neither."""
    with conn.transaction():
        # A retried request finds its order already there and stores nothing new.
        conn.execute(
            "INSERT INTO orders (request_id, customer_id, total) VALUES (%s, %s, %s)"
            " ON CONFLICT (request_id) DO NOTHING",
            (request_id, customer_id, total))
        # The request id is the idempotency key, so a retry returns the stored event.
        (event_id,) = conn.execute(
            "SELECT metering.ingest(customer_id, 'orders', occurred_at => created_at,"
            "                       idempotency_key => request_id)"
            " FROM orders WHERE request_id = %s",
            (request_id,)).fetchone()
        if not payment_ok:
            raise PaymentDeclined("payment declined")  # leaving the block rolls back
    return event_id


def main():
    with psycopg.connect(autocommit=True) as conn:  # transactions are explicit below
        print("== setup: the extension, the app's orders table, a customer on a plan")
        setup(conn)

        print("== an order and its usage commit together")
        event_id = place_order(conn, "order-1001", "acme", 25)
        print("order-1001: order and usage committed")

        print("== a retry of the same request returns the same event")
        retried = place_order(conn, "order-1001", "acme", 25)
        print(f"order-1001 again: same event id: {'yes' if retried == event_id else 'NO'}")

        print("== a failed order rolls back its usage with it")
        try:
            place_order(conn, "order-1002", "acme", 90, payment_ok=False)
        except PaymentDeclined as e:
            print(f"order-1002 failed: {e}")
        (orders,) = conn.execute(
            "SELECT count(*) FROM orders WHERE request_id = 'order-1002'").fetchone()
        (events,) = conn.execute(
            "SELECT count(*) FROM metering.events WHERE idempotency_key = 'order-1002'").fetchone()
        print(f"orders stored for order-1002: {orders}, events: {events}")

        print("== a batch of usage from a background job")
        batch = [
            {"customer_id": "acme", "meter": "pages", "value": 300, "idempotency_key": "scan-1"},
            {"customer_id": "acme", "meter": "pages", "value": 250, "idempotency_key": "scan-2"},
        ]
        first = send_batch(conn, batch)

        print("== the batch sent again, with one more element")
        batch.append({"customer_id": "acme", "meter": "pages", "value": 150,
                      "idempotency_key": "scan-3"})
        again = send_batch(conn, batch)
        print(f"duplicates return the first send's event ids: {'yes' if again[:2] == first else 'NO'}")

        print("== invoice lines of the open period")
        lines = conn.execute("""
            SELECT kind, description, quantity, amount, currency
            FROM metering.invoice_lines
            WHERE customer_id = 'acme' AND now() < period_end
            ORDER BY kind, meter NULLS FIRST""").fetchall()
        for kind, description, quantity, amount, currency in lines:
            print(f"{kind:<10}{description:<20}{quantity:>6}{amount:>9} {currency}")


def send_batch(conn, events):
    """One call for many events, all or nothing; repeated keys come back as duplicates.
    Returns the event ids in the order of the elements."""
    rows = conn.execute(
        "SELECT ordinal, event_id, status FROM metering.ingest_batch(%s) ORDER BY ordinal",
        (Jsonb(events),)).fetchall()
    for ordinal, _event_id, status in rows:
        print(f"element {ordinal}: {status}")
    return [event_id for _ordinal, event_id, _status in rows]


if __name__ == "__main__":
    main()
