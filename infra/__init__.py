"""The FlixTube Pulumi program (see docs/deploy.md). `__main__.py` is the entry point Pulumi runs."""
