//! A small SVG line chart of a node's power draw against its solar
//! production over its recent heartbeats (no script, no inline style: the
//! page's Content-Security-Policy allows neither).

use maud::{html, Markup};

use crate::coordinator::nodes::api::HeartbeatRecord;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
const PAD: f64 = 28.0;

/// One heartbeat's power: (draw, production) in W.
fn power(record: &HeartbeatRecord) -> Option<(f64, Option<f64>)> {
    let power = record.status.get("power")?;
    let draw = power.get("draw_watts")?.as_f64()?;
    let production = power.get("production_watts").and_then(|p| p.as_f64());
    Some((draw, production))
}

fn points(values: &[Option<f64>], top: f64) -> String {
    let step = (WIDTH - 2.0 * PAD) / (values.len().max(2) - 1) as f64;
    values
        .iter()
        .enumerate()
        .filter_map(|(i, value)| {
            value.map(|v| {
                let x = PAD + step * i as f64;
                let y = HEIGHT - PAD - (v / top) * (HEIGHT - 2.0 * PAD);
                format!("{x:.1},{y:.1}")
            })
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chart of `history` (newest first, as the store lists it); `None`
/// when no heartbeat in it carried a power report.
pub fn power_chart(history: &[HeartbeatRecord]) -> Option<Markup> {
    let samples: Vec<(f64, Option<f64>)> = history.iter().rev().filter_map(power).collect();
    if samples.is_empty() {
        return None;
    }
    let draw: Vec<Option<f64>> = samples.iter().map(|(d, _)| Some(*d)).collect();
    let production: Vec<Option<f64>> = samples.iter().map(|(_, p)| *p).collect();
    let top = samples
        .iter()
        .flat_map(|(d, p)| [Some(*d), *p])
        .flatten()
        .fold(1.0f64, f64::max)
        * 1.1;
    Some(html! {
        svg.chart #power-chart viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
            aria-label="Power draw and solar production over the recent heartbeats" {
            line.axis x1=(PAD) y1=(HEIGHT - PAD) x2=(WIDTH - PAD) y2=(HEIGHT - PAD) {}
            line.axis x1=(PAD) y1=(PAD) x2=(PAD) y2=(HEIGHT - PAD) {}
            text x="2" y=(PAD) { (format!("{top:.0} W")) }
            text x="2" y=(HEIGHT - PAD) { "0" }
            polyline.draw points=(points(&draw, top)) {}
            @if production.iter().any(Option::is_some) {
                polyline.production points=(points(&production, top)) {}
            }
            text x=(PAD) y=(HEIGHT - 6.0) { "draw (red) vs solar production (amber), " (samples.len()) " heartbeats" }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: u64, draw: f64, production: Option<f64>) -> HeartbeatRecord {
        HeartbeatRecord {
            seq,
            received_at: String::new(),
            observed_generation: None,
            ready: None,
            status: serde_json::json!({
                "power": { "draw_watts": draw, "production_watts": production }
            }),
        }
    }

    #[test]
    fn draw_and_production_are_drawn_oldest_first_within_the_frame() {
        let history = [record(2, 100.0, Some(50.0)), record(1, 200.0, None)];
        let svg = power_chart(&history).expect("a chart").into_string();
        assert!(svg.contains("class=\"draw\""), "{svg}");
        assert!(svg.contains("class=\"production\""), "{svg}");
        // Oldest (200 W) first at the left edge, at the top of the scale.
        let top_y = HEIGHT - PAD - (200.0 / 220.0) * (HEIGHT - 2.0 * PAD);
        assert!(svg.contains(&format!("{PAD:.1},{top_y:.1}")), "{svg}");
        assert!(power_chart(&[]).is_none());
    }
}
