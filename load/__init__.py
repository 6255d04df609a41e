"""Load: converted rows into the CDM, with stable ids, lineage, versions and the quarantine."""
