//! A job's footprint, pure: the node's energy report made safe (finite,
//! not negative, solar at most the whole), the grid part, its CO₂ at the
//! zone's intensity (solar Wh count as zero) and its cost at the spot
//! price.

use crate::energy::JobEnergy;

/// More than any job could use (a 10 kW node for 10 years is under 1 GWh).
const MAX_WH: f64 = 1.0e9;

/// What a job used and emitted.
#[derive(Debug, Clone, PartialEq)]
pub struct Footprint {
    pub energy_wh: f64,
    pub solar_wh: f64,
    pub grid_wh: f64,
    pub seconds: f64,
    pub measured_by: String,
    pub co2_grams: f64,
    pub cost_sek: Option<f64>,
}

impl Footprint {
    /// The share of the energy the node's panels covered, 0..=1.
    pub fn solar_fraction(&self) -> f64 {
        if self.energy_wh > 0.0 {
            self.solar_wh / self.energy_wh
        } else {
            0.0
        }
    }
}

fn bounded(value: f64, max: f64) -> f64 {
    if value.is_finite() {
        value.clamp(0.0, max)
    } else {
        0.0
    }
}

/// The footprint of `report` at `intensity_g_per_kwh` and, where known,
/// `price_sek_per_kwh`.
pub fn footprint(
    report: &JobEnergy,
    intensity_g_per_kwh: f64,
    price_sek_per_kwh: Option<f64>,
) -> Footprint {
    let energy_wh = bounded(report.energy_wh, MAX_WH);
    let solar_wh = bounded(report.solar_wh.unwrap_or(0.0), energy_wh);
    let grid_wh = energy_wh - solar_wh;
    let grid_kwh = grid_wh / 1000.0;
    let mut measured_by = report.measured_by.clone();
    measured_by.truncate(64);
    Footprint {
        energy_wh,
        solar_wh,
        grid_wh,
        seconds: bounded(report.seconds, MAX_WH),
        measured_by,
        co2_grams: grid_kwh * bounded(intensity_g_per_kwh, f64::MAX),
        cost_sek: price_sek_per_kwh.map(|price| grid_kwh * price),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(energy_wh: f64, solar_wh: Option<f64>) -> JobEnergy {
        JobEnergy {
            energy_wh,
            seconds: 60.0,
            measured_by: "rapl".into(),
            solar_wh,
        }
    }

    #[test]
    fn co2_follows_the_grid_part_and_the_intensity() {
        let all_grid = footprint(&report(500.0, None), 14.5, Some(0.592));
        assert_eq!(all_grid.grid_wh, 500.0);
        assert!((all_grid.co2_grams - 7.25).abs() < 1e-9);
        assert!((all_grid.cost_sek.expect("priced") - 0.296).abs() < 1e-9);
        let half_solar = footprint(&report(500.0, Some(250.0)), 14.5, None);
        assert_eq!(half_solar.grid_wh, 250.0);
        assert!((half_solar.co2_grams - 3.625).abs() < 1e-9);
        assert_eq!(half_solar.solar_fraction(), 0.5);
        assert_eq!(half_solar.cost_sek, None);
        let all_solar = footprint(&report(500.0, Some(500.0)), 200.0, Some(1.0));
        assert_eq!(all_solar.co2_grams, 0.0);
        assert_eq!(all_solar.cost_sek, Some(0.0));
    }

    #[test]
    fn a_bad_report_is_made_safe() {
        let nan = footprint(&report(f64::NAN, Some(5.0)), 14.5, None);
        assert_eq!(
            (nan.energy_wh, nan.solar_wh, nan.co2_grams),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(nan.solar_fraction(), 0.0);
        let more_solar = footprint(&report(10.0, Some(50.0)), 14.5, None);
        assert_eq!((more_solar.solar_wh, more_solar.grid_wh), (10.0, 0.0));
        let negative = footprint(&report(-3.0, Some(-1.0)), 14.5, None);
        assert_eq!((negative.energy_wh, negative.solar_wh), (0.0, 0.0));
    }
}
