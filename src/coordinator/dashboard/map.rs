//! The SVG map of Sweden on the regions page: the price areas SE1–SE4
//! (the coarse outlines of `geo::price_area`) and a circle per cluster of
//! nodes, its area growing with the nodes in it. Equirectangular, with
//! longitudes shrunk by the cosine of 62° N so the country keeps its shape.

use maud::{html, Markup};

use crate::coordinator::regions::api::RegionList;
use crate::geo::polygon::LonLat;
use crate::geo::price_area::outlines;

const WEST: f64 = 10.5;
const EAST: f64 = 24.6;
const SOUTH: f64 = 55.0;
const NORTH: f64 = 69.3;
/// Pixels per degree of latitude.
const SCALE: f64 = 40.0;
const PAD: f64 = 10.0;

fn x_scale() -> f64 {
    SCALE * 62f64.to_radians().cos()
}

fn width() -> f64 {
    (EAST - WEST) * x_scale() + 2.0 * PAD
}

fn height() -> f64 {
    (NORTH - SOUTH) * SCALE + 2.0 * PAD
}

/// The map position of a longitude and latitude.
pub fn project(longitude: f64, latitude: f64) -> (f64, f64) {
    (
        PAD + (longitude - WEST) * x_scale(),
        PAD + (NORTH - latitude) * SCALE,
    )
}

fn path(ring: &[LonLat]) -> String {
    let mut d = String::new();
    for (i, [lon, lat]) in ring.iter().enumerate() {
        let (x, y) = project(*lon, *lat);
        d.push_str(&format!("{}{x:.1},{y:.1} ", if i == 0 { 'M' } else { 'L' }));
    }
    d.push('Z');
    d
}

/// Where an area's label goes: the mean of its outline's points.
fn label_at(ring: &[LonLat]) -> (f64, f64) {
    let n = ring.len().max(1) as f64;
    let (lon, lat) = ring
        .iter()
        .fold((0.0, 0.0), |(a, b), [lon, lat]| (a + lon, b + lat));
    project(lon / n, lat / n)
}

/// A node cluster on the map: where, how many nodes, how many online.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    pub latitude: f64,
    pub longitude: f64,
    pub online: u64,
    pub total: u64,
}

/// The Swedish clusters with coordinates in `regions`.
pub fn swedish_dots(regions: &RegionList) -> Vec<Dot> {
    regions
        .countries
        .iter()
        .filter(|c| c.country.as_deref() == Some("SE"))
        .flat_map(|c| &c.areas)
        .flat_map(|a| &a.clusters)
        .filter_map(|cluster| {
            Some(Dot {
                latitude: cluster.latitude?,
                longitude: cluster.longitude?,
                online: cluster.capacity.nodes_online,
                total: cluster.capacity.nodes_total,
            })
        })
        .collect()
}

/// The map with `dots`.
pub fn sweden(dots: &[Dot]) -> Markup {
    html! {
        svg.map #sweden-map xmlns="http://www.w3.org/2000/svg"
            viewBox={ "0 0 " (format!("{:.0}", width())) " " (format!("{:.0}", height())) }
            width=(format!("{:.0}", width())) height=(format!("{:.0}", height()))
            role="img" aria-label="Map of Sweden's price areas SE1 to SE4 with the node clusters" {
            @for (area, ring) in outlines() {
                path class={ "area " (area.as_str()) } d=(path(ring)) {
                    title { (area.as_str()) }
                }
            }
            @for (area, ring) in outlines() {
                @let (x, y) = label_at(ring);
                text.area-label x=(format!("{x:.0}")) y=(format!("{y:.0}")) { (area.as_str()) }
            }
            @for dot in dots {
                @let (x, y) = project(dot.longitude, dot.latitude);
                @let radius = 3.0 + (dot.total as f64).sqrt() * 2.0;
                circle class=(if dot.online == 0 { "cluster offline" } else { "cluster" })
                    cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r=(format!("{radius:.1}")) {
                    title { (dot.online) " of " (dot.total) " nodes online" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_holds_the_four_areas_and_places_towns_inside_it() {
        let svg = sweden(&[Dot {
            latitude: 59.33,
            longitude: 18.07,
            online: 2,
            total: 3,
        }])
        .into_string();
        for area in ["SE1", "SE2", "SE3", "SE4"] {
            assert!(svg.contains(&format!("class=\"area {area}\"")), "{area}");
        }
        assert!(svg.contains("2 of 3 nodes online"));
        // Kiruna is north of Malmö and both are inside the frame.
        let (kx, ky) = project(20.22, 67.86);
        let (mx, my) = project(13.0, 55.6);
        assert!(ky < my && kx > mx);
        for (x, y) in [(kx, ky), (mx, my)] {
            assert!((0.0..width()).contains(&x) && (0.0..height()).contains(&y));
        }
    }
}
