"""The administration console (SPEC §8): relying systems, users, the audit log."""
