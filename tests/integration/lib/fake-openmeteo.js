// fake-openmeteo.js: a tiny Open-Meteo-compatible server for the get_weather
// integration tests.  One node:http server on 127.0.0.1 (ephemeral port)
// answers both APIs, so point AgentChatGeocodingEndpoint and
// AgentChatWeatherEndpoint at the same `url`:
//   GET /v1/search?name=Seattle&count=1&language=en&format=json
//   GET /v1/forecast?latitude=..&longitude=..&current=...&temperature_unit=celsius|fahrenheit
// Known places: Seattle, Paris, Tokyo (fixed weather); anything else has no
// results.  `requests` records {method, path, query} of every request; `fail(status)`
// makes the following answers that HTTP status until `fail(0)`.
'use strict';

const http = require('node:http');

const CITIES = {
    seattle: { name: 'Seattle', latitude: 47.60621, longitude: -122.33207, country: 'United States',
        admin1: 'Washington', temperature: 12.3, apparent: 10.8, humidity: 71, wind: 9.4, code: 2 },
    paris: { name: 'Paris', latitude: 48.85341, longitude: 2.3488, country: 'France',
        admin1: 'Île-de-France', temperature: 18.5, apparent: 18.1, humidity: 60, wind: 3.2, code: 0 },
    tokyo: { name: 'Tokyo', latitude: 35.6895, longitude: 139.69171, country: 'Japan',
        admin1: 'Tokyo', temperature: 22.1, apparent: 23.4, humidity: 80, wind: 12.6, code: 61 },
};

const round1 = (x) => Math.round(x * 10) / 10;

function send(res, status, body) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
}

function geocode(q) {
    const city = CITIES[String(q.get('name') || '').trim().toLowerCase()];
    if (!city) return { generationtime_ms: 0.4 };
    const { name, latitude, longitude, country, admin1 } = city;
    return { results: [{ id: 1, name, latitude, longitude, country, admin1, timezone: 'UTC' }],
        generationtime_ms: 0.5 };
}

function forecast(q) {
    const lat = Number(q.get('latitude'));
    const lon = Number(q.get('longitude'));
    const city = Object.values(CITIES).find(
        (c) => Math.abs(c.latitude - lat) < 0.01 && Math.abs(c.longitude - lon) < 0.01);
    if (!city) return null;
    const f = q.get('temperature_unit') === 'fahrenheit';
    const t = (c) => (f ? round1(c * 9 / 5 + 32) : c);
    return {
        latitude: city.latitude, longitude: city.longitude, timezone: 'GMT',
        current_units: { time: 'iso8601', interval: 'seconds', temperature_2m: f ? '°F' : '°C',
            relative_humidity_2m: '%', apparent_temperature: f ? '°F' : '°C', weather_code: 'wmo code',
            wind_speed_10m: 'km/h' },
        current: { time: '2026-01-01T12:00', interval: 900, temperature_2m: t(city.temperature),
            relative_humidity_2m: city.humidity, apparent_temperature: t(city.apparent),
            weather_code: city.code, wind_speed_10m: city.wind },
    };
}

// Resolves to {url, stop(), requests, fail(status)}.
function startFakeOpenMeteo() {
    const requests = [];
    let failStatus = 0;
    const server = http.createServer((req, res) => {
        const u = new URL(req.url, 'http://127.0.0.1');
        requests.push({ method: req.method, path: u.pathname, query: Object.fromEntries(u.searchParams) });
        req.resume();
        if (failStatus) return send(res, failStatus, { error: true, reason: 'forced failure' });
        if (req.method !== 'GET') return send(res, 405, { error: true, reason: 'GET only' });
        if (u.pathname === '/v1/search') return send(res, 200, geocode(u.searchParams));
        if (u.pathname === '/v1/forecast') {
            const body = forecast(u.searchParams);
            return body ? send(res, 200, body) : send(res, 400, { error: true, reason: 'unknown coordinates' });
        }
        return send(res, 404, { error: true, reason: 'not found' });
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
            const { port } = server.address();
            resolve({
                url: `http://127.0.0.1:${port}`,
                requests,
                fail(status) { failStatus = status || 0; },
                stop() {
                    return new Promise((done) => {
                        server.close(() => done());
                        server.closeAllConnections();
                    });
                },
            });
        });
    });
}

module.exports = { startFakeOpenMeteo, CITIES };
