"""Proofs from outside: the bank four-element check, SMS codes and image captchas.  Adapters
only; the sandboxes that answer them in development are wired in by the application factory."""
