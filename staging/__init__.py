"""ISCL/EORTC TNMB staging, B-category derivation, CLIPI, lines of therapy and oncology episodes.

Pure logic (no I/O): `tnmb`, `olsen`, `blood`, `clipi`, `lines`.
The CDM derivation step that reads and writes the database: `derive.derive_oncology`.
Policies are documented in staging/README.md.
"""
