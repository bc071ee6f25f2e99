-- Benchmark database: tables only; indexes come after the bulk load (indexes.sql).
-- Three shapes a dump has to handle: a rowid table with INTEGER PRIMARY KEY, a rowid
-- table without one (its rowids must survive a dump), and a WITHOUT ROWID table.
CREATE TABLE events(
  id      INTEGER PRIMARY KEY,
  ts      INTEGER NOT NULL,
  user_id INTEGER NOT NULL,
  kind    TEXT NOT NULL,
  amount  REAL,
  score   REAL,
  note    TEXT,
  payload BLOB
);
CREATE TABLE items(
  sku    TEXT NOT NULL,
  name   TEXT,
  price  REAL,
  qty    INTEGER,
  weight REAL,
  tags   TEXT,
  thumb  BLOB
);
CREATE TABLE kv(
  k TEXT PRIMARY KEY,
  n INTEGER NOT NULL,
  v TEXT,
  f REAL,
  b BLOB
) WITHOUT ROWID;
