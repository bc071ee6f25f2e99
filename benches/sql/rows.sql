-- Appends @events, @items and @kv new rows after the current last row of each table.
-- Used both to build the database and to append rows between snapshots.
-- Values: integers, "random-ish" reals (random()/1e9 has ~19 significant digits),
-- text of 20-120 chars (random hex mixed with words, some with quotes, so that the dump
-- compresses to about 30% with zlib, not 55% as pure random hex would), small blobs on some rows,
-- some NULLs.

CREATE TEMP TABLE IF NOT EXISTS lorem(txt TEXT);
DELETE FROM temp.lorem;
INSERT INTO temp.lorem VALUES(
  'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut '
  || 'labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco '
  || 'laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in '
  || 'voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat '
  || 'non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. Customer asked '
  || 'for a refund after the parcel arrived late; support escalated the ticket to billing. Payment '
  || 'captured, invoice sent, shipment scheduled for the next business day from the north warehouse.');

WITH RECURSIVE c(i) AS (
  SELECT (SELECT coalesce(max(id), 0) FROM events) + 1
  UNION ALL SELECT i + 1 FROM c LIMIT @events
)
INSERT INTO events(id, ts, user_id, kind, amount, score, note, payload)
SELECT i,
       1700000000 + i * 7 + abs(random()) % 7,
       abs(random()) % 50000,
       CASE abs(random()) % 6 WHEN 0 THEN 'click' WHEN 1 THEN 'view' WHEN 2 THEN 'purchase'
                              WHEN 3 THEN 'refund' WHEN 4 THEN 'login' ELSE 'logout' END,
       CASE WHEN i % 17 = 0 THEN NULL ELSE (abs(random()) % 10000000) / 100.0 END,
       random() / 1e9,
       substr(printf('event %d: %s%s %s', i,
                     CASE WHEN i % 29 = 0 THEN 'it''s "quoted"; ' ELSE '' END,
                     lower(hex(randomblob(6))),
                     substr((SELECT txt FROM temp.lorem), 1 + abs(random()) % 520, 120)),
              1, 20 + abs(random()) % 101),
       CASE WHEN i % 5 = 0 THEN randomblob(16 + abs(random()) % 48) END
FROM c;

WITH RECURSIVE c(i) AS (
  SELECT (SELECT coalesce(max(rowid), 0) FROM items) + 1
  UNION ALL SELECT i + 1 FROM c LIMIT @items
)
INSERT INTO items(sku, name, price, qty, weight, tags, thumb)
SELECT printf('SKU-%08d', i),
       printf('Item %d %s %s', i, lower(hex(randomblob(4))),
              substr((SELECT txt FROM temp.lorem), 1 + abs(random()) % 600, 10 + abs(random()) % 40)),
       (1 + abs(random()) % 99999) / 100.0,
       abs(random()) % 1000 - 10,
       CASE WHEN i % 11 = 0 THEN NULL ELSE random() / 1e16 END,
       CASE abs(random()) % 4 WHEN 0 THEN 'red,large' WHEN 1 THEN 'blue' WHEN 2 THEN '' END,
       CASE WHEN i % 3 = 0 THEN randomblob(24 + abs(random()) % 72) END
FROM c;

WITH RECURSIVE c(i) AS (
  SELECT (SELECT coalesce(max(n), 0) FROM kv) + 1
  UNION ALL SELECT i + 1 FROM c LIMIT @kv
)
INSERT INTO kv(k, n, v, f, b)
SELECT printf('key:%09d', i),
       i,
       substr(hex(randomblob(8)) || ' ' || substr((SELECT txt FROM temp.lorem), 1 + abs(random()) % 520, 120),
              1, 20 + abs(random()) % 101),
       CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN random() / 3.0
                  WHEN 2 THEN random() * 1e-30 ELSE (random() % 100000) / 7.0 END,
       CASE WHEN i % 7 = 0 THEN randomblob(8) END
FROM c;
