//! The tally, pure: from the power frozen at open and the votes cast, the
//! proposal's result and why. Quorum: the power that voted (yes, no and
//! abstain) is at least `quorum` of the frozen power, and some power voted.
//! Pass: yes is more than `threshold` of yes + no. Arithmetic in i128, so
//! no supply of µGAI overflows it.

use super::api::{ProposalState, Tally};
use crate::coordinator::parameters::names::BASIS_POINTS;

/// What a proposal froze when it opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frozen {
    pub total_power: i64,
    pub quorum_bps: i64,
    pub threshold_bps: i64,
}

/// The tally's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub state: ProposalState,
    /// For people: the numbers behind the verdict.
    pub reason: String,
}

/// The power that voted.
fn voted(tally: &Tally) -> i128 {
    i128::from(tally.yes) + i128::from(tally.no) + i128::from(tally.abstain)
}

/// Whether enough of the frozen power voted.
pub fn quorum_reached(frozen: &Frozen, tally: &Tally) -> bool {
    let voted = voted(tally);
    voted > 0
        && voted * i128::from(BASIS_POINTS)
            >= i128::from(frozen.quorum_bps) * i128::from(frozen.total_power)
}

/// `bps` basis points as a percentage, e.g. `20.00 %`.
fn percent(bps: i64) -> String {
    format!("{}.{:02} %", bps / 100, (bps % 100).abs())
}

/// The result of a proposal whose deadline passed.
pub fn decide(frozen: &Frozen, tally: &Tally) -> Decision {
    let participation = format!(
        "{} of {} µGAI of voting power voted (quorum {})",
        voted(tally),
        frozen.total_power,
        percent(frozen.quorum_bps)
    );
    if !quorum_reached(frozen, tally) {
        return Decision {
            state: ProposalState::NoQuorum,
            reason: format!("no quorum: {participation}"),
        };
    }
    let decided = i128::from(tally.yes) + i128::from(tally.no);
    let passed = i128::from(tally.yes) * i128::from(BASIS_POINTS)
        > i128::from(frozen.threshold_bps) * decided;
    let verdict = format!(
        "{participation}; yes {} of yes + no {} (threshold: more than {})",
        tally.yes,
        decided,
        percent(frozen.threshold_bps)
    );
    if passed {
        Decision {
            state: ProposalState::Passed,
            reason: format!("passed: {verdict}"),
        }
    } else {
        Decision {
            state: ProposalState::Rejected,
            reason: format!("rejected: {verdict}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FROZEN: Frozen = Frozen {
        total_power: 10_000,
        quorum_bps: 2_000,
        threshold_bps: 5_000,
    };

    fn tally(yes: i64, no: i64, abstain: i64) -> Tally {
        Tally {
            yes,
            no,
            abstain,
            votes: 1,
        }
    }

    #[test]
    fn verdicts_read_as_their_numbers() {
        let cases = [
            (tally(2_000, 0, 0), FROZEN),
            (tally(1_999, 0, 0), FROZEN),
            (tally(1_000, 1_000, 0), FROZEN),
            (tally(1_001, 1_000, 0), FROZEN),
            (tally(0, 0, 5_000), FROZEN),
            (
                tally(0, 0, 0),
                Frozen {
                    total_power: 0,
                    ..FROZEN
                },
            ),
            (
                tally(6_667, 3_333, 0),
                Frozen {
                    threshold_bps: 6_667,
                    ..FROZEN
                },
            ),
        ];
        let text: Vec<String> = cases
            .iter()
            .map(|(t, f)| {
                let d = decide(f, t);
                format!("{} | {}", d.state.as_str(), d.reason)
            })
            .collect();
        let want = [
            "passed | passed: 2000 of 10000 µGAI of voting power voted (quorum 20.00 %); yes 2000 of yes + no 2000 (threshold: more than 50.00 %)",
            "no_quorum | no quorum: 1999 of 10000 µGAI of voting power voted (quorum 20.00 %)",
            "rejected | rejected: 2000 of 10000 µGAI of voting power voted (quorum 20.00 %); yes 1000 of yes + no 2000 (threshold: more than 50.00 %)",
            "passed | passed: 2001 of 10000 µGAI of voting power voted (quorum 20.00 %); yes 1001 of yes + no 2001 (threshold: more than 50.00 %)",
            "rejected | rejected: 5000 of 10000 µGAI of voting power voted (quorum 20.00 %); yes 0 of yes + no 0 (threshold: more than 50.00 %)",
            "no_quorum | no quorum: 0 of 0 µGAI of voting power voted (quorum 20.00 %)",
            "rejected | rejected: 10000 of 10000 µGAI of voting power voted (quorum 20.00 %); yes 6667 of yes + no 10000 (threshold: more than 66.67 %)",
        ];
        assert_eq!(text, want);
    }

    #[test]
    fn the_largest_supplies_do_not_overflow() {
        let frozen = Frozen {
            total_power: i64::MAX,
            quorum_bps: BASIS_POINTS,
            threshold_bps: BASIS_POINTS,
        };
        let all_yes = tally(i64::MAX, 0, 0);
        assert!(quorum_reached(&frozen, &all_yes));
        assert_eq!(decide(&frozen, &all_yes).state, ProposalState::Rejected);
        let below = Frozen {
            threshold_bps: BASIS_POINTS - 1,
            ..frozen
        };
        assert_eq!(decide(&below, &all_yes).state, ProposalState::Passed);
    }
}
