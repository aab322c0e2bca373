"""A module whose own code raises a plain ValueError while it is imported."""

raise ValueError("settings.yaml is missing the 'region' key")
