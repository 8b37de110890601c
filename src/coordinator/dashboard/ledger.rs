//! The ledger page (`/ledger`): the supply audit with every invariant of
//! NETWORK.md's "Money" (public, as `GET /api/ledger/audit`), and for the
//! admin the largest balances and the newest transfers.

use axum::extract::State;
use axum::response::Response;
use maud::html;

use super::error::PageError;
use super::format;
use super::layout::{self, PageInfo, Section};
use super::state::DashboardState;
use super::viewer::Viewer;
use crate::clock::unix_millis;

/// Rows of the balances and transfers tables.
const TOP: i64 = 20;

pub async fn page(
    State(state): State<DashboardState>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    let store = &state.store;
    let audit = store.audit().await?;
    let private = if viewer.is_admin() {
        Some((
            store.top_balances(TOP).await?,
            store.recent_transfers(TOP).await?,
        ))
    } else {
        None
    };
    let now = unix_millis();
    let info = PageInfo {
        title: "Ledger",
        section: Section::Ledger,
        viewer,
        live: None,
        path: "/ledger",
    };
    Ok(layout::respond(layout::page(
        info,
        html! {
            h1 { "Ledger" }
            div.cards {
                div.card { div.label { "Audit" }
                    div class={ "value " (if audit.ok { "ok" } else { "bad" }) } #audit-result { (if audit.ok { "every invariant holds" } else { "FAILING" }) } }
                div.card { div.label { "Supply" } div.value { (format::gai(audit.supply_ugai)) } }
                div.card { div.label { "Sum of balances" } div.value { (format::gai(audit.balances_ugai)) } }
                div.card { div.label { "Treasury" } div.value { (format::gai(audit.treasury_ugai)) } }
                div.card { div.label { "Held in escrow" } div.value { (format::gai(audit.held_ugai)) " (" (audit.open_holds) " holds)" } }
                div.card { div.label { "Transfers" } div.value { (audit.transfers) } }
            }
            h2 { "Invariants" }
            table #invariants-table {
                thead { tr { th { "Invariant" } th { "Meaning" } th { "Holds" } th.num { "Rows breaking it" } } }
                tbody { @for invariant in &audit.invariants {
                    tr {
                        td.mono { (invariant.name) }
                        td { (invariant.meaning) }
                        td class=(if invariant.holds { "ok" } else { "bad" }) { (if invariant.holds { "yes" } else { "NO" }) }
                        td.num { (invariant.breaking) }
                    }
                } }
            }
            @match &private {
                Some((balances, transfers)) => {
                    div.split {
                        div {
                            h2 { "Largest balances" }
                            table #balances-table { thead { tr { th { "Account" } th { "Kind" } th.num { "Balance" } } }
                                tbody { @for b in balances { tr { td.mono { (b.account) } td { (b.kind) } td.num { (format::gai(b.balance)) } } } }
                            }
                        }
                        div {
                            h2 { "Newest transfers" }
                            table #transfers-table { thead { tr { th { "When" } th { "Kind" } th { "From" } th { "To" } th.num { "Amount" } } }
                                tbody { @for t in transfers {
                                    tr {
                                        td { (format::age(t.at_ms, now)) }
                                        td { (t.kind) }
                                        td.mono { (t.debit) }
                                        td.mono { (t.credit) }
                                        td.num { (format::gai(t.amount)) }
                                    }
                                } }
                            }
                        }
                    }
                },
                None => (layout::admin_only("/ledger", "Balances and transfers")),
            }
        },
    )))
}
