"""The Evaluate page (in-context learning); split by job in the next steps."""
