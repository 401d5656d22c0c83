"""Relying systems of the bureau that use the unified user platform as their OpenID Provider.

Each one is a separate application with its own settings, database and secrets: it talks to the
platform only through OpenID Connect (discovery, the code flow, the JWKS, logout), exactly as a
system of another department would.  Nothing here imports the provider's ``idp`` package.
"""
