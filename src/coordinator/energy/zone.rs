//! The grid zone whose figures apply to a node: a Swedish price area, a
//! country, or unknown; from the region key the regions domain stores
//! (`node_regions.country`, `node_regions.price_area`, '' when unknown).

use crate::geo::PriceArea;

/// Where a node draws its grid power from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GridZone {
    Area(PriceArea),
    /// An ISO 3166-1 alpha-2 code other than a Swedish price area.
    Country(String),
    Unknown,
}

/// `price_area` label values of the energy metrics.
pub const ZONE_LABELS: [&str; 6] = ["SE1", "SE2", "SE3", "SE4", "other", "unknown"];

impl GridZone {
    /// The zone of a stored region key.
    pub fn from_key(country: &str, price_area: &str) -> GridZone {
        if let Ok(area) = price_area.parse::<PriceArea>() {
            return GridZone::Area(area);
        }
        if country.len() == 2 && crate::geo::is_country(country) {
            return GridZone::Country(country.to_string());
        }
        GridZone::Unknown
    }

    /// Its name in Electricity Maps' API (`SE-SE3`, `DE`); none when unknown.
    pub fn carbon_zone(&self) -> Option<String> {
        match self {
            GridZone::Area(area) => Some(format!("SE-{area}")),
            GridZone::Country(code) => Some(code.clone()),
            GridZone::Unknown => None,
        }
    }

    /// Its `price_area` metric label, one of [`ZONE_LABELS`].
    pub fn label(&self) -> &'static str {
        match self {
            GridZone::Area(area) => area.as_str(),
            GridZone::Country(_) => "other",
            GridZone::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_become_zones() {
        assert_eq!(
            GridZone::from_key("SE", "SE3"),
            GridZone::Area(PriceArea::SE3)
        );
        assert_eq!(
            GridZone::from_key("DE", ""),
            GridZone::Country("DE".to_string())
        );
        assert_eq!(GridZone::from_key("", ""), GridZone::Unknown);
        assert_eq!(GridZone::from_key("XX", ""), GridZone::Unknown);
        assert_eq!(
            GridZone::from_key("SE", "SE3").carbon_zone().as_deref(),
            Some("SE-SE3")
        );
        assert_eq!(GridZone::Unknown.carbon_zone(), None);
        assert!(ZONE_LABELS.contains(&GridZone::from_key("DE", "").label()));
    }
}
