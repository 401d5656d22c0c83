"""Administration: staff roles and actors, relying systems and their secrets, user management."""
