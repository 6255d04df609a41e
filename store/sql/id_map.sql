-- ctcl_id_map: the OMOP id each source key (a resource, a derived row) was given, by id space.

-- name: visit_starts
-- the Encounter keys as a one-column relation k(k)
SELECT m.row_key, v.visit_start_date, v.visit_start_datetime FROM {ctcl_id_map} m
JOIN {encounters} k ON k.k = m.row_key
JOIN {visit_occurrence} v ON v.visit_occurrence_id = m.omop_id
WHERE m.id_space = 'visit_occurrence'

-- name: largest_id_of_space
-- parameters: the space twice (one indexed MAX per space: an aggregate over the whole table would scan it)
SELECT CAST(? AS VARCHAR(40)), (SELECT MAX(omop_id) FROM {ctcl_id_map} WHERE id_space = ?)

-- name: ids_of_keys
-- the keys as a relation w(id_space, row_key)
SELECT m.id_space, m.row_key, m.omop_id FROM {ctcl_id_map} m
JOIN {wanted} w ON w.id_space = m.id_space AND w.row_key = m.row_key

-- name: ids_of_keys_like
SELECT id_space, row_key, omop_id FROM {ctcl_id_map} WHERE row_key LIKE ?
