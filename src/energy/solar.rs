//! The clear-sky solar production model: the sun's position from NREL's
//! Solar Position Algorithm (the `solar-positioning` crate; Reda & Andreas,
//! Solar Energy 76 (2004) 577–589), clear-sky irradiance from the
//! Ineichen–Perez model (Ineichen & Perez, Solar Energy 73 (2002) 151–157)
//! with a fixed Linke turbidity, the isotropic-sky transposition onto the
//! tilted panel, and a linear panel: `capacityKw` kW at 1000 W/m² on the
//! panel. No weather, temperature or inverter losses: an upper bound for
//! what the panels give. Night (the sun's apparent elevation at or below
//! the horizon) is exactly 0.
//!
//! Each step follows pvlib's implementation of the same model
//! (`solarposition.get_solarposition`, `atmosphere.get_relative_airmass`
//! Kasten–Young 1989, `irradiance.get_extra_radiation` Spencer 1971,
//! `clearsky.ineichen`, `irradiance.get_total_irradiance` isotropic), and
//! `tests/solar_pvlib.rs` checks the result against pvlib itself.

use solar_positioning::time::JulianDate;
use solar_positioning::{delta_t, Location, RefractionCorrection, SolarPositions};

/// Linke turbidity of the clear sky: 3.0, a typical yearly value for
/// Sweden's rural and suburban air (Meteotest's climatology, which pvlib
/// ships, gives about 2.5–3.5 there).
pub const LINKE_TURBIDITY: f64 = 3.0;
/// Share of the ground's reflection the panel sees (pvlib's default).
pub const ALBEDO: f64 = 0.25;
/// The solar constant of Spencer's extraterrestrial radiation, W/m².
pub const SOLAR_CONSTANT: f64 = 1366.1;
/// Air pressure (hPa) and temperature (°C) for refraction: pvlib's defaults.
const PRESSURE_HPA: f64 = 1013.25;
const TEMPERATURE_C: f64 = 12.0;

/// A panel: where it is and how it faces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Panel {
    pub latitude: f64,
    pub longitude: f64,
    /// Peak power in kW at 1000 W/m² on the panel.
    pub capacity_kw: f64,
    /// From horizontal, degrees.
    pub tilt_deg: f64,
    /// Clockwise from north, degrees (180 faces south).
    pub azimuth_deg: f64,
}

/// The model's steps at one moment, for tests and `/status`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SolarEstimate {
    /// Refraction-corrected zenith angle of the sun, degrees.
    pub apparent_zenith_deg: f64,
    /// Clockwise from north, degrees.
    pub sun_azimuth_deg: f64,
    /// Clear-sky global horizontal, direct normal and diffuse horizontal
    /// irradiance, W/m².
    pub ghi: f64,
    pub dni: f64,
    pub dhi: f64,
    /// Irradiance on the panel, W/m².
    pub poa_global: f64,
    /// What the panel gives, W.
    pub watts: f64,
}

/// The clear-sky production of `panel` at `unix_seconds` (UTC). `None`
/// only for a time outside the SPA's years (-2000 to 6000).
pub fn estimate(panel: &Panel, unix_seconds: f64) -> Option<SolarEstimate> {
    let (zenith, sun_azimuth) = sun_position(panel.latitude, panel.longitude, unix_seconds)?;
    let night = SolarEstimate {
        apparent_zenith_deg: zenith,
        sun_azimuth_deg: sun_azimuth,
        ghi: 0.0,
        dni: 0.0,
        dhi: 0.0,
        poa_global: 0.0,
        watts: 0.0,
    };
    if zenith >= 90.0 {
        return Some(night);
    }
    let airmass = kasten_young_airmass(zenith);
    let dni_extra = extraterrestrial_normal(day_of_year(unix_seconds));
    let (ghi, dni, dhi) = ineichen(zenith, airmass, LINKE_TURBIDITY, dni_extra);
    let poa_global = isotropic_poa(panel, zenith, sun_azimuth, ghi, dni, dhi);
    Some(SolarEstimate {
        ghi,
        dni,
        dhi,
        poa_global,
        watts: panel.capacity_kw * poa_global,
        ..night
    })
}

/// The sun's apparent zenith and azimuth (degrees) by the SPA, with
/// ΔT estimated for the date.
pub fn sun_position(latitude: f64, longitude: f64, unix_seconds: f64) -> Option<(f64, f64)> {
    const UNIX_EPOCH_JD: f64 = 2_440_587.5;
    let year = 1970.0 + unix_seconds / (365.2425 * 86_400.0);
    let delta_t = delta_t::estimate(year).ok()?;
    let time = JulianDate::new(UNIX_EPOCH_JD + unix_seconds / 86_400.0, delta_t).ok()?;
    let refraction = RefractionCorrection::new(PRESSURE_HPA, TEMPERATURE_C).ok()?;
    let position = SolarPositions::new()
        .at_from_julian(
            time,
            Location {
                latitude,
                longitude,
            },
            0.0,
            Some(refraction),
        )
        .ok()?;
    Some((position.zenith_angle(), position.azimuth()))
}

/// Relative air mass at sea level, Kasten & Young (1989).
fn kasten_young_airmass(zenith_deg: f64) -> f64 {
    1.0 / (zenith_deg.to_radians().cos() + 0.50572 * (96.07995 - zenith_deg).powf(-1.6364))
}

/// Day of the year (1 = 1 January), UTC.
fn day_of_year(unix_seconds: f64) -> u32 {
    let days = (unix_seconds / 86_400.0).floor() as i64;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy_march = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy_march + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    // Days before each month's first day in a common year.
    const BEFORE: [i64; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    let day = doy_march - (153 * mp + 2) / 5 + 1;
    let idx = usize::try_from(month - 1).unwrap_or(0);
    let doy = BEFORE[idx] + day + i64::from(leap && month > 2);
    u32::try_from(doy).unwrap_or(1)
}

/// Extraterrestrial normal irradiance, W/m², Spencer (1971).
fn extraterrestrial_normal(day_of_year: u32) -> f64 {
    let b = 2.0 * std::f64::consts::PI * f64::from(day_of_year - 1) / 365.0;
    let r = 1.00011
        + 0.034221 * b.cos()
        + 0.00128 * b.sin()
        + 0.000719 * (2.0 * b).cos()
        + 0.000077 * (2.0 * b).sin();
    SOLAR_CONSTANT * r
}

/// Ineichen–Perez clear sky at sea level: (GHI, DNI, DHI) in W/m².
fn ineichen(zenith_deg: f64, airmass: f64, tl: f64, dni_extra: f64) -> (f64, f64, f64) {
    let cos_zenith = zenith_deg.to_radians().cos().max(0.0);
    // Altitude 0: fh1 = fh2 = 1, cg1 = 0.868, cg2 = 0.0387.
    let (fh1, fh2, cg1, cg2) = (1.0, 1.0, 0.868, 0.0387);
    let ghi = cg1 * dni_extra * cos_zenith * (-cg2 * airmass * (fh1 + fh2 * (tl - 1.0))).exp();
    let b = 0.664 + 0.163 / fh1;
    let bnci = dni_extra * (b * (-0.09 * airmass * (tl - 1.0)).exp()).max(0.0);
    let correction = (1.0 - (0.1 - 0.2 * (-tl).exp()) / (0.1 + 0.882 / fh1)) / cos_zenith;
    let bnci_2 = ghi * correction.clamp(0.0, 1e20);
    let dni = bnci.min(bnci_2);
    let dhi = ghi - dni * cos_zenith;
    (ghi, dni, dhi)
}

/// Irradiance on the tilted panel (W/m²): beam by the angle of incidence,
/// isotropic sky diffuse, and ground reflection.
fn isotropic_poa(
    panel: &Panel,
    zenith: f64,
    sun_azimuth: f64,
    ghi: f64,
    dni: f64,
    dhi: f64,
) -> f64 {
    let (tilt, z) = (panel.tilt_deg.to_radians(), zenith.to_radians());
    let cos_aoi = (z.cos() * tilt.cos()
        + z.sin() * tilt.sin() * (sun_azimuth - panel.azimuth_deg).to_radians().cos())
    .clamp(-1.0, 1.0);
    let beam = (dni * cos_aoi).max(0.0);
    let sky = dhi * (1.0 + tilt.cos()) / 2.0;
    let ground = ghi * ALBEDO * (1.0 - tilt.cos()) / 2.0;
    beam + sky + ground
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCKHOLM: Panel = Panel {
        latitude: 59.33,
        longitude: 18.07,
        capacity_kw: 6.5,
        tilt_deg: 35.0,
        azimuth_deg: 180.0,
    };

    /// 2026-06-21T10:00:00Z and 2026-12-21T23:00:00Z.
    const MIDSUMMER_NOON: f64 = 1_782_036_000.0;
    const MIDWINTER_NIGHT: f64 = 1_797_894_000.0;

    #[test]
    fn night_is_exactly_zero() {
        let night = estimate(&STOCKHOLM, MIDWINTER_NIGHT).expect("in range");
        assert!(night.apparent_zenith_deg > 90.0);
        assert_eq!(night.watts, 0.0);
    }

    #[test]
    fn a_summer_noon_gives_most_of_the_capacity() {
        let noon = estimate(&STOCKHOLM, MIDSUMMER_NOON).expect("in range");
        assert!((30.0..40.0).contains(&noon.apparent_zenith_deg), "{noon:?}");
        // A clear summer noon gives roughly 0.9-1.1 kW per kW installed on
        // a south-facing 35° panel.
        assert!((5_500.0..7_200.0).contains(&noon.watts), "{noon:?}");
        let flat_north = Panel {
            tilt_deg: 60.0,
            azimuth_deg: 0.0,
            ..STOCKHOLM
        };
        let away = estimate(&flat_north, MIDSUMMER_NOON).expect("in range");
        assert!(away.watts < noon.watts / 2.0, "{away:?}");
    }

    #[test]
    fn day_of_year_counts_from_the_first_of_january_utc() {
        assert_eq!(day_of_year(0.0), 1);
        assert_eq!(day_of_year(MIDSUMMER_NOON), 172);
        assert_eq!(day_of_year(MIDWINTER_NIGHT), 355);
        // 2024-12-31T12:00:00Z, a leap year.
        assert_eq!(day_of_year(1_735_646_400.0), 366);
        // 2024-03-01T00:00:00Z.
        assert_eq!(day_of_year(1_709_251_200.0), 61);
    }
}
