-- Storage at scale (issue 14): the ports' addresses, indexed; the same as SQLite's 0010.
--
-- "Is this address in use?" used to read every port's fixed_ips JSON, inside the serialised
-- write transaction of every port create, so creates slowed with the number of ports. Each
-- (port, address) is a row here, written with the port (crate::shared::writes) and gone with
-- it (ON DELETE CASCADE).
--
-- The model's rule (docs/security.md, "Addresses"): no two ports of one network hold an
-- address; the unique index enforces it behind the service's check. Databases from before
-- that rule (schema < 2) may hold such pairs: the backfill marks every holder after the first
-- as legacy_duplicate, which the index leaves out, so the migration never fails on old data
-- (the service's check still sees those rows and refuses the address to anyone new).
CREATE TABLE port_addresses (
    port_id          TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
    network_id       TEXT NOT NULL,
    address          TEXT NOT NULL,  -- as the model writes it (std::net::IpAddr's Display)
    legacy_duplicate BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (port_id, address)
);
CREATE INDEX port_addresses_address ON port_addresses (address);
CREATE UNIQUE INDEX port_addresses_network_address
    ON port_addresses (network_id, address) WHERE NOT legacy_duplicate;

INSERT INTO port_addresses (port_id, network_id, address, legacy_duplicate)
SELECT port_id, network_id, address,
       row_number() OVER (PARTITION BY network_id, address ORDER BY seq) > 1
FROM (SELECT DISTINCT p.seq, p.id AS port_id, p.network_id, j ->> 'ip_address' AS address
      FROM ports p, jsonb_array_elements(p.fixed_ips::jsonb) j) x;
