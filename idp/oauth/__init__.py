"""The OpenID Connect protocol: Authlib's server, our grants, claims, keys and discovery."""
