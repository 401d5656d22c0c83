"""The administration console: relying systems, users, the audit log."""
