-- ctcl_settings: named values a CDM keeps about itself (DDL digest, configuration fingerprints,
-- the pseudonym key check).

-- name: read
SELECT value FROM {ctcl_settings} WHERE name = ?

-- name: forget
DELETE FROM {ctcl_settings} WHERE name = ?
