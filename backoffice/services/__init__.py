"""Writes that span apps: setting up a tenant with everything it needs to move money."""
