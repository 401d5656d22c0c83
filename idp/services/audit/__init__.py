"""The audit trail: recording events (in the caller's transaction) and the auditors' log
(filters, export, retention)."""
