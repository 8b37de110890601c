//! `GET /api/regions` from the store's sums, pure: area rows (exact),
//! cell rows (up to the listing limit) and energy rows nest into
//! countries → areas → clusters; a country's figures are the sums of its
//! areas.

use std::collections::BTreeMap;

use super::api::{
    AreaView, ClusterView, CountryView, RegionCapacity, RegionEnergy, RegionList, RegionPower,
};
use super::key::{RegionKey, CELL_DEGREES};
use super::store::{EnergyRow, GroupRow};
use crate::coordinator::energy::api::GridFigure;

/// The grid figures in use for one area: intensity, and price where known.
pub type AreaFigures = (GridFigure, Option<GridFigure>);

/// What the view is made of.
#[derive(Debug, Clone, Default)]
pub struct Sums {
    pub areas: Vec<GroupRow>,
    pub cells: Vec<GroupRow>,
    pub area_energy: Vec<EnergyRow>,
    pub cell_energy: Vec<EnergyRow>,
    pub clusters_truncated: bool,
}

fn known(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn capacity(row: &GroupRow) -> RegionCapacity {
    RegionCapacity {
        nodes_online: unsigned(row.online),
        nodes_total: unsigned(row.total),
        gpus: unsigned(row.gpus),
        vram_mib: unsigned(row.vram_mib),
        tokens_per_second: row.tokens_per_second,
    }
}

fn power(row: &GroupRow) -> RegionPower {
    RegionPower {
        draw_watts: row.draw_watts,
        production_watts: row.production_watts,
        surplus_watts: row.surplus_watts,
    }
}

fn energy(row: Option<&EnergyRow>) -> RegionEnergy {
    row.map_or_else(RegionEnergy::default, |e| RegionEnergy {
        jobs: unsigned(e.jobs),
        energy_wh: e.energy_wh,
        solar_wh: e.solar_wh,
        grid_wh: e.grid_wh,
        co2_grams: e.co2_grams,
        cost_sek: e.cost_sek,
    })
}

fn add_option(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
    }
}

fn add(country: &mut CountryView, area: &AreaView) {
    let (c, a) = (&mut country.capacity, &area.capacity);
    c.nodes_online += a.nodes_online;
    c.nodes_total += a.nodes_total;
    c.gpus += a.gpus;
    c.vram_mib += a.vram_mib;
    c.tokens_per_second += a.tokens_per_second;
    let (p, q) = (&mut country.power, &area.power);
    p.draw_watts = add_option(p.draw_watts, q.draw_watts);
    p.production_watts = add_option(p.production_watts, q.production_watts);
    p.surplus_watts = add_option(p.surplus_watts, q.surplus_watts);
    let (e, f) = (&mut country.energy, &area.energy);
    e.jobs += f.jobs;
    e.energy_wh += f.energy_wh;
    e.solar_wh += f.solar_wh;
    e.grid_wh += f.grid_wh;
    e.co2_grams += f.co2_grams;
    e.cost_sek += f.cost_sek;
}

fn area_of(key: &RegionKey) -> (String, String) {
    (key.country.clone(), key.price_area.clone())
}

/// The regions of `sums`, with `figures` per (country, price area).
pub fn regions(sums: Sums, figures: &BTreeMap<(String, String), AreaFigures>) -> RegionList {
    let cell_energy: BTreeMap<&RegionKey, &EnergyRow> =
        sums.cell_energy.iter().map(|e| (&e.key, e)).collect();
    let area_energy: BTreeMap<(String, String), &EnergyRow> = sums
        .area_energy
        .iter()
        .map(|e| (area_of(&e.key), e))
        .collect();
    let mut clusters: BTreeMap<(String, String), Vec<ClusterView>> = BTreeMap::new();
    for row in &sums.cells {
        clusters
            .entry(area_of(&row.key))
            .or_default()
            .push(ClusterView {
                cell: known(&row.key.cell),
                latitude: row.latitude,
                longitude: row.longitude,
                capacity: capacity(row),
                power: power(row),
                energy: energy(cell_energy.get(&row.key).copied()),
            });
    }
    let mut countries: Vec<CountryView> = Vec::new();
    for row in &sums.areas {
        let key = area_of(&row.key);
        let Some((carbon_intensity, spot_price)) = figures.get(&key).copied() else {
            continue;
        };
        let area = AreaView {
            price_area: known(&row.key.price_area),
            carbon_intensity,
            spot_price,
            capacity: capacity(row),
            power: power(row),
            energy: energy(area_energy.get(&key).copied()),
            clusters: clusters.remove(&key).unwrap_or_default(),
        };
        let country = known(&row.key.country);
        if countries.last().is_none_or(|last| last.country != country) {
            countries.push(CountryView {
                eu: country.as_deref().is_some_and(crate::geo::is_eu),
                country,
                capacity: RegionCapacity::default(),
                power: RegionPower::default(),
                energy: RegionEnergy::default(),
                areas: Vec::new(),
            });
        }
        if let Some(last) = countries.last_mut() {
            add(last, &area);
            last.areas.push(area);
        }
    }
    RegionList {
        countries,
        cell_degrees: CELL_DEGREES,
        clusters_truncated: sums.clusters_truncated,
    }
}
