"""ctcl-map: FHIR R4 -> OMOP CDM v5.4 for cutaneous T-cell lymphoma research."""

__version__ = "0.1.0"

CDM_VERSION = "v5.4"
