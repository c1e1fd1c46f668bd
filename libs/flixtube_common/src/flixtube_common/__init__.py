"""Code the FlixTube services share: settings, logs, the "viewed" message and how it travels."""
