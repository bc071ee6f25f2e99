-- The scattered part of a ~0.1% change between two snapshots (round @round >= 1):
-- about 1 row in 6007 of every table is updated, another 1 in 6007 deleted
-- (~330 + ~330 rows at 2 M rows). The selections are deterministic and shift each
-- round; the appended rows come from rows.sql.
UPDATE events
   SET amount = (abs(random()) % 10000000) / 100.0,
       score = random() / 1e9,
       note = printf('updated in round %d: %s', @round, hex(randomblob(20)))
 WHERE id % 6007 = (@round * 613 + 3) % 6007;
DELETE FROM events WHERE id % 6007 = (@round * 613 + 3 + 3001) % 6007;

UPDATE items SET qty = qty + 1, price = price * 1.05
 WHERE rowid % 6007 = (@round * 613 + 5) % 6007;
DELETE FROM items WHERE rowid % 6007 = (@round * 613 + 5 + 3001) % 6007;

UPDATE kv SET v = printf('round %d', @round), f = f / 2
 WHERE n % 6007 = (@round * 613 + 7) % 6007;
DELETE FROM kv WHERE n % 6007 = (@round * 613 + 7 + 3001) % 6007;
