"""Energy highlights, CO2 impact and savings accounting (pure functions over frames)."""
