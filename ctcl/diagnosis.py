"""What a Condition's verificationStatus says about a diagnosis: no I/O.

Refuted and entered-in-error conditions are not asserted and give no row. Provisional, differential
and unconfirmed diagnoses are loaded with their status (condition_status_source_value), but the
oncology derivation and the survival cohorts leave them out unless asked to include them.
"""

NOT_ASSERTED = frozenset({"refuted", "entered-in-error"})
UNCONFIRMED_STATUSES = ("provisional", "differential", "unconfirmed")  # kept, but not analysed as diagnoses
