"""Business rules, callable without HTTP: views parse, call a service, render."""
