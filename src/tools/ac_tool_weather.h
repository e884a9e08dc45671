/* ac_tool_weather: the get_weather(location, unit) tool.  Two requests to an
 * Open-Meteo-compatible service: geocoding turns the place name into
 * coordinates, the forecast API gives current conditions there.  Upstream
 * trouble becomes a short tool error for the model and one log line. */
#ifndef AC_TOOL_WEATHER_H
#define AC_TOOL_WEATHER_H

#include "ac_tool.h"

#include <apr_pools.h>

#define AC_WEATHER_GEOCODING_DEFAULT "https://geocoding-api.open-meteo.com"
#define AC_WEATHER_FORECAST_DEFAULT "https://api.open-meteo.com"
#define AC_WEATHER_MAX_LOCATION 200                      /* characters */
#define AC_WEATHER_MAX_RESPONSE ((apr_size_t)256 * 1024) /* per upstream answer */
#define AC_WEATHER_DEFAULT_TIMEOUT apr_time_from_sec(10) /* when ctx->timeout is 0 */

/* WMO weather interpretation code in words ("Partly cloudy"); "Unknown" for
 * codes outside the table. */
const char *ac_weather_condition(int code);

/* The tool.  Bases are scheme://host[:port][/prefix] (a trailing '/' is
 * ignored); NULL selects the public Open-Meteo endpoints.  ctx->http must be an
 * ac_http_pool_t *; the whole call (both requests) stays within ctx->timeout.
 * args {"location": "Seattle", "unit": "celsius"|"fahrenheit"} ->
 * {"location": "Seattle, Washington, United States", "latitude", "longitude",
 *  "temperature", "unit": "°C", "feels_like", "humidity", "wind_speed",
 *  "wind_unit", "condition": "Partly cloudy", "weather_code": 2}; a field the
 * service did not report is left out. */
const ac_tool_t *ac_tool_weather(apr_pool_t *p, const char *geocoding_base,
                                 const char *forecast_base);

#endif
