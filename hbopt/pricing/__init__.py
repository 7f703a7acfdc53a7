"""Day-ahead prices, retail tariff composition and grid CO2 intensity."""
