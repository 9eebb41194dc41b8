"""Habla's one-machine runtime: embedded servers, the service supervisor and the CLI."""
