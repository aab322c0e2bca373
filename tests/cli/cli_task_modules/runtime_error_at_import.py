"""A module whose own code raises something that is not a ValueError while it is imported."""

raise RuntimeError("cannot reach the feature store")
