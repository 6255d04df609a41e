-- ctcl_id_map: the OMOP id each source key (a resource, a derived row) was given, by id space.

-- name: visit_starts
-- the Encounter keys as a one-column relation k(k)
SELECT m.row_key, v.visit_start_date, v.visit_start_datetime FROM {ctcl_id_map} m
JOIN {encounters} k ON k.k = m.row_key
JOIN {visit_occurrence} v ON v.visit_occurrence_id = m.omop_id
WHERE m.id_space = 'visit_occurrence'
