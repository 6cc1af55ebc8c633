PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE items (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,        -- normalised URL, or line:N for a bad input row
    url TEXT NOT NULL,               -- as given in the input
    line INTEGER,
    state TEXT NOT NULL,             -- pending | ok | failed | skipped
    path TEXT,
    bytes INTEGER,
    sha256 TEXT,
    content_type TEXT,
    status INTEGER,
    error TEXT,
    message TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    started REAL,
    elapsed REAL,
    final_url TEXT,
    extra TEXT,                      -- input columns carried along (JSON)
    kind TEXT NOT NULL DEFAULT 'file', -- file | page | image (crawl)
    depth INTEGER,                   -- crawl depth
    found_on INTEGER,                -- id of the page row this URL was found on
    info TEXT                        -- what processing learnt (JSON: width, height, ...)
);
INSERT INTO items VALUES(1,'http://127.0.0.1:@PORT@/img/1.jpg','http://127.0.0.1:@PORT@/img/1.jpg',1,'ok','87/872258a06373e13e0b1aaec5c2f8803d.jpg',41967,'2e1d9f9cf8c1f7f86531ea980e7a6b00f552d230f6293de5c216af6e741aab4a','image/jpeg',200,NULL,NULL,1,1796168117.17968297,0.40374199999999998977,'http://127.0.0.1:@PORT@/img/1.jpg',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(2,'http://127.0.0.1:@PORT@/img/2.jpg?sig=a/b%3D','http://127.0.0.1:@PORT@/img/2.jpg?sig=a%2Fb%3D',2,'ok','9a/9ae9ff3acdaf51f53a22d70f11c51b91.jpg',28107,'2789c192b160189f7a1b25eb8c5b123e7c618cee43aea30ebc93c584da7d1a93','image/jpeg',200,NULL,NULL,1,1796168117.5835661887,0.40296999999999999486,'http://127.0.0.1:@PORT@/img/2.jpg?sig=a/b%3D',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(3,'http://127.0.0.1:@PORT@/img/3.jpg?q=a+b','http://127.0.0.1:@PORT@/img/3.jpg?q=a b',3,'ok','45/450e0d96085dfc349e66c44d1f790e3d.jpg',10536,'0e8ac6823fbdac949eed992e2dab4a6f219bfb255f56984f2d67bde3d7a3dcc5','image/jpeg',200,NULL,NULL,1,1796168117.9866766929,0.40294999999999997486,'http://127.0.0.1:@PORT@/img/3.jpg?q=a+b',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(4,'http://127.0.0.1:@PORT@','http://127.0.0.1:@PORT@',4,'failed',NULL,NULL,NULL,NULL,200,'not_image','Content-Type ''text/plain'' is not an image',1,1796168118.3897593021,0.40270800000000001039,'http://127.0.0.1:@PORT@',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(5,'http://127.0.0.1:@PORT@/','http://127.0.0.1:@PORT@/',5,'failed',NULL,NULL,NULL,NULL,200,'not_image','Content-Type ''text/plain'' is not an image',1,1796168118.7927258014,0.40243899999999999117,'http://127.0.0.1:@PORT@/',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(6,'http://127.0.0.1:@PORT@/img%5C8.jpg','http://127.0.0.1:@PORT@/img\8.jpg',6,'failed',NULL,NULL,NULL,NULL,404,'http_404','HTTP 404',1,1796168119.1953458785,0.40220899999999998319,'http://127.0.0.1:@PORT@/img%5C8.jpg',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(7,'http://127.0.0.1:@PORT@/img/8.jpg','http://127.0.0.1:@PORT@/img/8.jpg',7,'ok','93/93e22af1549be076f1a6fc692d77bbbc.jpg',41272,'92db75eb32b86eca5d722d53c66bd4bdb17bc2a729debbb9a986e0dc299d9f4b','image/jpeg',200,NULL,NULL,1,1796168119.5978131293,0.4026520000000000099,'http://127.0.0.1:@PORT@/img/8.jpg',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(8,'http://127.0.0.1:@PORT@/status/404','http://127.0.0.1:@PORT@/status/404',8,'failed',NULL,NULL,NULL,NULL,404,'http_404','HTTP 404',1,1796168120.0005836486,0.40397699999999997499,'http://127.0.0.1:@PORT@/status/404',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(9,'http://127.0.0.1:@PORT@/img%5C15.jpg','http://127.0.0.1:@PORT@/img\15.jpg',9,'failed',NULL,NULL,NULL,NULL,404,'http_404','HTTP 404',1,1796168120.4047772884,0.40257100000000001216,'http://127.0.0.1:@PORT@/img%5C15.jpg',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(10,'http://0x7f.0.0.1:@PORT@/img/1.jpg','http://0x7f.0.0.1:@PORT@/img/1.jpg',10,'failed',NULL,NULL,NULL,NULL,NULL,'dns_error','DNS lookup failed: [Errno None] Domain name not found',1,1796168120.8075997829,0.0027049999999999999392,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(11,'http://127.0.0.1:@PORT@/img/~9.jpg','http://127.0.0.1:@PORT@/img/%7e9.jpg',12,'failed',NULL,NULL,NULL,NULL,404,'http_404','HTTP 404',1,1796168120.8104856014,0.40242899999999998117,'http://127.0.0.1:@PORT@/img/~9.jpg',NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(12,'http://127.0.0.1:@PORT@/img/10.jpg?sig=x/y','http://127.0.0.1:@PORT@/img/10.jpg?sig=x%2Fy',13,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(13,'http://127.0.0.1:@PORT@/img%5C11.jpg','http://127.0.0.1:@PORT@/img\11.jpg',14,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(14,'http://127.0.0.1:@PORT@/img/11.jpg','http://127.0.0.1:@PORT@/img/11.jpg',15,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(15,'http://127.0.0.1:@PORT@/img/12.jpg','http://127.0.0.1:@PORT@/IMG/../img/12.jpg#frag',16,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(16,'http://127.0.0.1:@PORT@/img/13.jpg?q=a+b&r=%2B','http://127.0.0.1:@PORT@/img/13.jpg?q=a b&r=%2B',18,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(17,'http://127.0.0.1:@PORT@/img/14.jpg','http://127.0.0.1:@PORT@/img/14.jpg',19,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
INSERT INTO items VALUES(18,'http://127.0.0.1:@PORT@/img/15.jpg','http://127.0.0.1:@PORT@/img/15.jpg',20,'pending',NULL,NULL,NULL,NULL,NULL,NULL,NULL,0,NULL,NULL,NULL,NULL,'file',NULL,NULL,NULL);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES('schema_version','1');
CREATE INDEX items_state ON items(state, id);
COMMIT;
