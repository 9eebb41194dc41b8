"""Plumbing shared by Habla's services: settings, the Redis Streams bus, the Postgres log."""
