"""Accounts: creation and login, lockout, login sessions, 安全中心 (password, security questions),
profile view and change, authorised systems, and the revocation of tokens."""
