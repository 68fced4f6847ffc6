"""Many rows in few statements (``streams.store.bulk``): every row written once, in order,
whatever the count against the rows per statement, and stored as binding each value stores it
(values every row shares are written into the statement)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.store import bulk
from streams.store.engine import open_store


@pytest.mark.parametrize("count", [0, 1, bulk.ROWS_PER_STATEMENT, bulk.ROWS_PER_STATEMENT + 1, 3 * bulk.ROWS_PER_STATEMENT + 7])
def test_every_row_is_inserted_once_in_order(tmp_path: Path, count: int) -> None:
    with open_store(str(tmp_path / "t.db"), create=True) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER UNIQUE, v TEXT)")
        rows = [(i, f"v{i}") for i in range(count)]
        bulk.insert_rows(conn, "INSERT INTO t (k, v)", rows, "?")
        assert conn.exec_driver_sql("SELECT k, v FROM t ORDER BY seq").all() == rows


@pytest.mark.parametrize("count", [1, bulk.ROWS_PER_STATEMENT, 2 * bulk.ROWS_PER_STATEMENT + 3])
def test_extra_values_follow_every_row(tmp_path: Path, count: int) -> None:
    with open_store(str(tmp_path / "t.db"), create=True) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (seq INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER, v TEXT, run TEXT, day TEXT)")
        rows = [(i, f"v{i}") for i in range(count)]
        bulk.insert_rows(conn, "INSERT INTO t (k, v, run, day)", rows, "?", extra=("run-1", "2026-09-01"))
        got = conn.exec_driver_sql("SELECT k, v, run, day FROM t ORDER BY seq").all()
        assert got == [(k, v, "run-1", "2026-09-01") for k, v in rows]


def test_an_upsert_tail_updates_rows_already_there(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "t.db"), create=True) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        bulk.insert_rows(conn, "INSERT INTO t (k, v)", [(i, "old") for i in range(60)], "?")
        bulk.insert_rows(
            conn, "INSERT INTO t (k, v)", [(i, "new") for i in range(30, 90)], "?",
            " ON CONFLICT (k) DO UPDATE SET v = excluded.v",
        )
        got = dict(conn.exec_driver_sql("SELECT k, v FROM t").all())
        assert len(got) == 90 and {got[i] for i in range(30)} == {"old"} and {got[i] for i in range(30, 90)} == {"new"}


def test_journals_in_memory_only_inside_the_block(tmp_path: Path) -> None:
    with open_store(str(tmp_path / "t.db"), create=True) as store, store.engine.begin() as conn:
        default = conn.exec_driver_sql("PRAGMA temp_store").scalar_one()
        with bulk.journals_in_memory(conn):
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar_one() == 2  # MEMORY
        assert conn.exec_driver_sql("PRAGMA temp_store").scalar_one() == default


T = sa.Table("t", sa.MetaData(), sa.Column("k", sa.Integer, primary_key=True), sa.Column("v", sa.Text),
             sa.Column("kind", sa.Text))


def test_rows_written_at_the_driver_are_the_rows_sqlalchemy_writes(tmp_path: Path) -> None:
    rows = [{"k": i, "v": None if i % 3 else f"v{i}"} for i in range(7)]
    with open_store(str(tmp_path / "t.db"), create=True) as store, store.engine.begin() as conn:
        T.create(conn)
        fixed = sa.insert(T).values(kind="answer")  # a value the statement fixes itself
        bulk.driver_write_many(conn, fixed, rows)
        sa_way = [{"k": 100 + r["k"], "v": r["v"]} for r in rows]
        conn.execute(fixed, sa_way)
        got = conn.exec_driver_sql("SELECT k, v, kind FROM t ORDER BY k").all()
    assert got == [(r["k"], r["v"], "answer") for r in rows] + [(r["k"], r["v"], "answer") for r in sa_way]


def test_a_driver_error_is_raised_as_sqlalchemys(tmp_path: Path) -> None:
    # The worker's batch step tells a refused event (IntegrityError: dead-lettered alone) and a
    # locked database (OperationalError: the batch waits) by SQLAlchemy's classes.
    with open_store(str(tmp_path / "t.db"), create=True) as store, store.engine.begin() as conn:
        T.create(conn)
        bulk.driver_write_many(conn, sa.insert(T), [{"k": 1, "v": "a", "kind": None}])
        with pytest.raises(sa.exc.IntegrityError):
            bulk.driver_write_many(conn, sa.insert(T), [{"k": 1, "v": "b", "kind": None}])
        with pytest.raises(sa.exc.OperationalError):
            bulk.driver_read(conn, "SELECT * FROM no_such_table", ())
        assert bulk.driver_read(conn, "SELECT k, v FROM t", ()) == (["k", "v"], [(1, "a")])


# Values a column may hold: text (quotes, a NUL), NULL, and what must stay bound (numbers,
# bytes, text's look-alikes): a shared one is written into the statement.
VALUES = st.sampled_from(["pre-scheduled", "it's", "", "a\x00b", None, 0, 1, 1.0, True, b"x", "1", "NULL"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=st.lists(st.tuples(VALUES, st.booleans()), min_size=1, max_size=4),
    extra=st.lists(VALUES, max_size=2),
    count=st.sampled_from([1, bulk.ROWS_PER_STATEMENT - 1, bulk.ROWS_PER_STATEMENT, 2 * bulk.ROWS_PER_STATEMENT + 3]),
    data=st.data(),
)
def test_rows_are_stored_as_binding_each_value_stores_them(
    tmp_path: Path, shape: list[tuple[object, bool]], extra: list[object], count: int, data: st.DataObject
) -> None:
    # Each column either has one value in every row (shared) or values drawn per row.
    rows = [
        tuple(v if same else data.draw(VALUES) for v, same in shape) for _ in range(count)
    ]
    names = [f"c{j}" for j in range(len(shape) + len(extra))]
    head = f"INSERT INTO t ({', '.join(names)})"
    db = tmp_path / f"t{len(list(tmp_path.iterdir()))}.db"
    with open_store(str(db), create=True) as store, store.engine.begin() as conn:
        for table in ("t", "plain"):
            conn.exec_driver_sql(f"CREATE TABLE {table} (seq INTEGER PRIMARY KEY AUTOINCREMENT, {', '.join(names)})")
        bulk.insert_rows(conn, head, rows, "?", extra=tuple(extra))
        marks = ", ".join("?" for _ in names)
        conn.exec_driver_sql(f"INSERT INTO plain ({', '.join(names)}) VALUES ({marks})", [(*r, *extra) for r in rows])
        read = ", ".join(f"{c}, typeof({c})" for c in names)
        got = conn.exec_driver_sql(f"SELECT {read} FROM t ORDER BY seq").all()
        assert got == conn.exec_driver_sql(f"SELECT {read} FROM plain ORDER BY seq").all()
