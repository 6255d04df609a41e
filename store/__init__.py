"""Store: the one layer that talks to databases and files of rows (DuckDB, PostgreSQL, Parquet/CSV
export). Every driver error becomes a DatabaseError here."""
