-- Regions and the energy of jobs (issue 13). `node_regions` is each
-- node's region key (country, Swedish price area, grid cell; '' when
-- unknown) and the capacity and power figures `GET /api/regions` adds up,
-- kept as narrow columns so the regions are one GROUP BY over them and
-- never a read of every node's JSON. Written at registration (key,
-- capacity) and by heartbeats that carry a power report (power).
-- `job_energy` is what a completed job used and emitted, one row per job;
-- `region_energy` the running totals per region key, updated in the same
-- transaction. Times are Unix milliseconds.

CREATE TABLE node_regions (
    node_id TEXT PRIMARY KEY,
    country TEXT NOT NULL,
    price_area TEXT NOT NULL,
    cell TEXT NOT NULL,
    latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION,
    gpus BIGINT NOT NULL DEFAULT 0,
    vram_mib BIGINT NOT NULL DEFAULT 0,
    tokens_per_second DOUBLE PRECISION NOT NULL DEFAULT 0,
    draw_watts DOUBLE PRECISION,
    production_watts DOUBLE PRECISION,
    surplus_watts DOUBLE PRECISION,
    power_at BIGINT
);

CREATE INDEX node_regions_key ON node_regions (country, price_area, cell);

-- Nodes registered before this migration get their country and declared
-- price area now; cell and capacity come with their next registration
-- (every agent registers when it starts).
INSERT INTO node_regions (node_id, country, price_area, cell, latitude, longitude)
SELECT node_id, COALESCE(UPPER(country), ''),
       CASE WHEN UPPER(COALESCE(country, '')) = 'SE' AND region IN ('SE1', 'SE2', 'SE3', 'SE4')
            THEN region ELSE '' END,
       '', latitude, longitude
FROM nodes;

CREATE TABLE job_energy (
    job_id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL,
    country TEXT NOT NULL,
    price_area TEXT NOT NULL,
    cell TEXT NOT NULL,
    energy_wh DOUBLE PRECISION NOT NULL,
    solar_wh DOUBLE PRECISION NOT NULL,
    grid_wh DOUBLE PRECISION NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    measured_by TEXT NOT NULL,
    intensity_g_per_kwh DOUBLE PRECISION NOT NULL,
    intensity_source TEXT NOT NULL,
    co2_grams DOUBLE PRECISION NOT NULL,
    price_sek_per_kwh DOUBLE PRECISION,
    price_source TEXT,
    cost_sek DOUBLE PRECISION,
    green_bonus BIGINT NOT NULL DEFAULT 0,
    recorded_at BIGINT NOT NULL,
    CHECK (energy_wh >= 0 AND solar_wh >= 0 AND grid_wh >= 0 AND co2_grams >= 0),
    CHECK (green_bonus >= 0)
);

CREATE TABLE region_energy (
    country TEXT NOT NULL,
    price_area TEXT NOT NULL,
    cell TEXT NOT NULL,
    jobs BIGINT NOT NULL,
    energy_wh DOUBLE PRECISION NOT NULL,
    solar_wh DOUBLE PRECISION NOT NULL,
    grid_wh DOUBLE PRECISION NOT NULL,
    co2_grams DOUBLE PRECISION NOT NULL,
    cost_sek DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (country, price_area, cell)
);
