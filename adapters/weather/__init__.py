"""Weather forecasts from public providers (fetch ``get_*`` / parse ``read_*`` split).

* ``open_meteo`` — Open-Meteo's key-free global forecast (hourly irradiance, temperature, wind).
"""

from adapters.weather.open_meteo import (
    OPEN_METEO_URL,
    WEATHER_COLUMNS,
    WeatherDataError,
    get_open_meteo_forecast,
    read_open_meteo_json,
)

__all__ = [
    "OPEN_METEO_URL",
    "WEATHER_COLUMNS",
    "WeatherDataError",
    "get_open_meteo_forecast",
    "read_open_meteo_json",
]
