//! Which linked node serves a request: one that serves the model, passed
//! its market's qualification, meets the request's residency and has a
//! free slot — the one with the most free slots (ties by fewest requests
//! in flight, then node id). When none fits, the answer says why: no node
//! serves the model (404), none may serve this request (503 with the
//! reason), or all suitable nodes are busy (429).

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use super::error::GatewayError;
use super::links::{Link, Slot};
use crate::coordinator::jobs::api::Residency;
use crate::coordinator::jobs::placement::fit::residency_allows;

/// Seconds a client is told to wait when every suitable node is busy.
const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// Picks a node for `model` among `links`, skipping `tried`, and takes a
/// slot on it.
pub fn choose(
    links: &[Arc<Link>],
    model: &str,
    residency: Option<&Residency>,
    tried: &HashSet<Uuid>,
) -> Result<(Arc<Link>, Slot), GatewayError> {
    let serving: Vec<&Arc<Link>> = links.iter().filter(|l| l.serves(model)).collect();
    if serving.is_empty() {
        let mut served: Vec<String> = links.iter().flat_map(|l| l.models()).collect();
        served.sort();
        served.dedup();
        return Err(GatewayError::model_not_found(model, &served));
    }
    let untried: Vec<&Arc<Link>> = serving
        .iter()
        .copied()
        .filter(|l| !tried.contains(&l.node_id))
        .collect();
    let qualified: Vec<&Arc<Link>> = untried
        .iter()
        .copied()
        .filter(|l| l.facts.qualified)
        .collect();
    let resident: Vec<&Arc<Link>> = qualified
        .iter()
        .copied()
        .filter(|l| residency.is_none_or(|r| residency_allows(r, &l.facts.location)))
        .collect();
    if resident.is_empty() {
        let why = if untried.is_empty() {
            format!("every node serving `{model}` failed this request")
        } else if qualified.is_empty() {
            format!("no node serving `{model}` has passed its market's qualification yet")
        } else {
            format!(
                "no node serving `{model}` meets the residency {} ({} serve it elsewhere)",
                describe(residency),
                qualified.len()
            )
        };
        return Err(GatewayError::unavailable(why));
    }
    let mut ranked = resident;
    ranked.sort_by_cached_key(|l| (std::cmp::Reverse(l.free_slots()), l.in_flight(), l.node_id));
    for link in ranked {
        if let Some(slot) = link.try_take_slot() {
            return Ok((Arc::clone(link), slot));
        }
    }
    Err(GatewayError::no_capacity(model, BUSY_RETRY_AFTER_SECS))
}

fn describe(residency: Option<&Residency>) -> String {
    let Some(r) = residency else {
        return "(none)".into();
    };
    let mut parts = r.countries.clone();
    if r.eu {
        parts.push("EU".into());
    }
    parts.extend(r.price_areas.iter().cloned());
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::coordinator::api::Location;
    use crate::coordinator::gateway::links::NodeFacts;

    fn link(n: u128, country: &str, qualified: bool, slots: u32) -> Arc<Link> {
        let link = Arc::new(Link::new(
            Uuid::from_u128(n),
            NodeFacts {
                market: "cpu".into(),
                location: Location {
                    country: Some(country.into()),
                    ..Location::default()
                },
                qualified,
            },
            n as u64,
            mpsc::channel(1).0,
            prometheus::IntGauge::new("in_flight", "test").unwrap(),
        ));
        link.announce(vec!["m".into()], slots);
        link
    }

    #[test]
    fn the_node_with_most_free_slots_that_fits_is_chosen() {
        let links = vec![
            link(1, "SE", true, 2),
            link(2, "DE", true, 4),
            link(3, "SE", false, 9),
        ];
        let none = HashSet::new();
        let (first, _slot) = choose(&links, "m", None, &none).unwrap();
        assert_eq!(
            first.node_id,
            Uuid::from_u128(2),
            "most free slots, qualified"
        );
        let se = Residency {
            countries: vec!["SE".into()],
            ..Residency::default()
        };
        let (resident, _slot2) = choose(&links, "m", Some(&se), &none).unwrap();
        assert_eq!(resident.node_id, Uuid::from_u128(1), "never a non-SE node");
        let tried: HashSet<_> = [Uuid::from_u128(1)].into();
        let err = choose(&links, "m", Some(&se), &tried).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::SERVICE_UNAVAILABLE);
        let err = choose(&links, "other", None, &none).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (404, "model_not_found"));
    }

    #[test]
    fn busy_nodes_answer_429() {
        let links = vec![link(1, "SE", true, 1)];
        let none = HashSet::new();
        let (_link, _slot) = choose(&links, "m", None, &none).unwrap();
        let err = choose(&links, "m", None, &none).unwrap_err();
        assert_eq!(err.status.as_u16(), 429);
        assert_eq!(err.retry_after_secs, Some(BUSY_RETRY_AFTER_SECS));
    }
}
