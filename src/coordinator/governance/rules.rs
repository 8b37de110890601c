//! What a proposal may say, checked once into a [`ValidProposal`]: title
//! and description sizes, the kind's own part (a parameter in range, a mint
//! into a client, node or the treasury), the voting period and when a
//! passed parameter takes effect. Pure: the caller passes `now` and the
//! live default voting period.

use super::api::{MintProposal, NewProposal, ParameterProposal, ProposalKind};
use crate::clock::parse_rfc3339_millis;
use crate::coordinator::ledger::LedgerAccount;
use crate::coordinator::parameters::{Parameter, ParameterError};

/// The longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 120;
/// The longest description, in bytes.
pub const MAX_DESCRIPTION_BYTES: usize = 8 * 1024;
/// The shortest and longest voting period, in seconds.
pub const VOTING_PERIOD_SECONDS: std::ops::RangeInclusive<i64> = 1..=90 * 86_400;
/// Open proposals one proposer may have at once.
pub const MAX_OPEN_PER_PROPOSER: i64 = 5;

/// Why a proposal is refused before anything is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProposalError {
    #[error("title must be 1-{MAX_TITLE_CHARS} characters, not {chars}")]
    Title { chars: usize },
    #[error("description is {bytes} bytes; at most {MAX_DESCRIPTION_BYTES} are kept (fix: link to a longer text)")]
    Description { bytes: usize },
    #[error("a {kind} proposal needs `{field}` (fix: add it, e.g. {example})")]
    Missing {
        kind: &'static str,
        field: &'static str,
        example: &'static str,
    },
    #[error("a {kind} proposal takes no `{field}` (fix: remove it)")]
    Unexpected {
        kind: &'static str,
        field: &'static str,
    },
    #[error("parameter: {0}")]
    Parameter(#[from] ParameterError),
    #[error("mint.account {account:?} is not an account (fix: use client:<account id>, node:<node uuid> or treasury)")]
    MintAccount { account: String },
    #[error("mint.amount_ugai must be above 0, not {amount}")]
    MintAmount { amount: i64 },
    #[error("voting_period_seconds {seconds} is outside 1..=7776000 (1 s to 90 days)")]
    VotingPeriod { seconds: i64 },
    #[error("effective_at {text:?} is not an RFC 3339 time (e.g. 2026-12-24T12:00:00Z)")]
    EffectiveAtFormat { text: String },
    #[error("effective_at {text} is before the vote's deadline {deadline} (fix: a later time, or none for the deadline itself)")]
    EffectiveAtEarly { text: String, deadline: String },
}

/// What a proposal does once passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Schedules `value` for the parameter at `effective_at_ms`.
    Parameter {
        parameter: Parameter,
        value: i64,
        effective_at_ms: i64,
    },
    /// Mints `amount` µGAI into the ledger account `account`.
    Mint {
        account: LedgerAccount,
        amount: i64,
    },
    Signal,
}

impl Action {
    pub fn kind(&self) -> ProposalKind {
        match self {
            Action::Parameter { .. } => ProposalKind::Parameter,
            Action::Mint { .. } => ProposalKind::Mint,
            Action::Signal => ProposalKind::Signal,
        }
    }
}

/// A proposal that may be stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidProposal {
    pub title: String,
    pub description: String,
    pub action: Action,
    pub deadline_ms: i64,
}

/// Checks `proposal` made at `now_ms`; `default_period_s` is the live
/// `governance.votingPeriodSeconds`.
pub fn check(
    proposal: NewProposal,
    default_period_s: i64,
    now_ms: i64,
) -> Result<ValidProposal, ProposalError> {
    let chars = proposal.title.trim().chars().count();
    if !(1..=MAX_TITLE_CHARS).contains(&chars) {
        return Err(ProposalError::Title { chars });
    }
    if proposal.description.len() > MAX_DESCRIPTION_BYTES {
        return Err(ProposalError::Description {
            bytes: proposal.description.len(),
        });
    }
    let seconds = proposal.voting_period_seconds.unwrap_or(default_period_s);
    if !VOTING_PERIOD_SECONDS.contains(&seconds) {
        return Err(ProposalError::VotingPeriod { seconds });
    }
    let deadline_ms = now_ms.saturating_add(seconds.saturating_mul(1000));
    let kind = proposal.kind.as_str();
    if proposal.kind != ProposalKind::Parameter {
        if proposal.parameter.is_some() {
            return Err(ProposalError::Unexpected {
                kind,
                field: "parameter",
            });
        }
        if proposal.effective_at.is_some() {
            return Err(ProposalError::Unexpected {
                kind,
                field: "effective_at",
            });
        }
    }
    if proposal.kind != ProposalKind::Mint && proposal.mint.is_some() {
        return Err(ProposalError::Unexpected {
            kind,
            field: "mint",
        });
    }
    let action = match proposal.kind {
        ProposalKind::Parameter => {
            let Some(ParameterProposal { name, value }) = proposal.parameter else {
                return Err(ProposalError::Missing {
                    kind,
                    field: "parameter",
                    example: r#""parameter": {"name": "networkFeeBasisPoints", "value": 300}"#,
                });
            };
            let parameter = Parameter::parse(&name)?;
            let value = parameter.check(value)?;
            let effective_at_ms = match proposal.effective_at {
                None => deadline_ms,
                Some(text) => {
                    let at = parse_rfc3339_millis(&text)
                        .ok_or_else(|| ProposalError::EffectiveAtFormat { text: text.clone() })?;
                    if at < deadline_ms {
                        return Err(ProposalError::EffectiveAtEarly {
                            text,
                            deadline: crate::clock::rfc3339_millis(deadline_ms),
                        });
                    }
                    at
                }
            };
            Action::Parameter {
                parameter,
                value,
                effective_at_ms,
            }
        }
        ProposalKind::Mint => {
            let Some(MintProposal {
                account,
                amount_ugai,
            }) = proposal.mint
            else {
                return Err(ProposalError::Missing {
                    kind,
                    field: "mint",
                    example: r#""mint": {"account": "treasury", "amount_ugai": 1000000}"#,
                });
            };
            let account = LedgerAccount::parse(&account)
                .filter(LedgerAccount::may_receive_mint)
                .ok_or(ProposalError::MintAccount { account })?;
            if amount_ugai <= 0 {
                return Err(ProposalError::MintAmount {
                    amount: amount_ugai,
                });
            }
            Action::Mint {
                account,
                amount: amount_ugai,
            }
        }
        ProposalKind::Signal => Action::Signal,
    };
    Ok(ValidProposal {
        title: proposal.title.trim().to_string(),
        description: proposal.description,
        action,
        deadline_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn signal() -> NewProposal {
        NewProposal {
            kind: ProposalKind::Signal,
            title: "Meet in Umeå".into(),
            description: String::new(),
            parameter: None,
            mint: None,
            voting_period_seconds: None,
            effective_at: None,
        }
    }

    fn fee(value: i64) -> NewProposal {
        NewProposal {
            kind: ProposalKind::Parameter,
            parameter: Some(ParameterProposal {
                name: "networkFeeBasisPoints".into(),
                value,
            }),
            ..signal()
        }
    }

    #[test]
    fn a_parameter_takes_effect_at_the_deadline_unless_later() {
        let valid = check(fee(300), 60, NOW).expect("valid");
        assert_eq!(valid.deadline_ms, NOW + 60_000);
        assert_eq!(
            valid.action,
            Action::Parameter {
                parameter: Parameter::NetworkFeeBasisPoints,
                value: 300,
                effective_at_ms: NOW + 60_000
            }
        );
        let later = NewProposal {
            voting_period_seconds: Some(2),
            effective_at: Some(crate::clock::rfc3339_millis(NOW + 10_000)),
            ..fee(300)
        };
        let valid = check(later, 60, NOW).expect("valid");
        assert_eq!(valid.deadline_ms, NOW + 2_000);
        assert!(matches!(
            valid.action,
            Action::Parameter { effective_at_ms, .. } if effective_at_ms == NOW + 10_000
        ));
        let early = NewProposal {
            effective_at: Some(crate::clock::rfc3339_millis(NOW + 1_000)),
            ..fee(300)
        };
        assert!(matches!(
            check(early, 60, NOW),
            Err(ProposalError::EffectiveAtEarly { .. })
        ));
    }

    #[test]
    fn malformed_proposals_name_what_is_wrong() {
        let refusals = [
            check(fee(9_000), 60, NOW),
            check(
                NewProposal {
                    title: " ".into(),
                    ..signal()
                },
                60,
                NOW,
            ),
            check(
                NewProposal {
                    title: "x".repeat(121),
                    ..signal()
                },
                60,
                NOW,
            ),
            check(
                NewProposal {
                    description: "x".repeat(8 * 1024 + 1),
                    ..signal()
                },
                60,
                NOW,
            ),
            check(
                NewProposal {
                    voting_period_seconds: Some(0),
                    ..signal()
                },
                60,
                NOW,
            ),
            check(
                NewProposal {
                    kind: ProposalKind::Parameter,
                    ..signal()
                },
                60,
                NOW,
            ),
            check(
                NewProposal {
                    kind: ProposalKind::Mint,
                    mint: Some(MintProposal {
                        account: "bank".into(),
                        amount_ugai: 5,
                    }),
                    ..signal()
                },
                60,
                NOW,
            ),
            check(
                NewProposal {
                    parameter: fee(1).parameter,
                    ..signal()
                },
                60,
                NOW,
            ),
        ];
        let text: Vec<String> = refusals
            .into_iter()
            .map(|r| r.expect_err("refused").to_string())
            .collect();
        let want = [
            "parameter: networkFeeBasisPoints: 9000 is outside 0..=5000",
            "title must be 1-120 characters, not 0",
            "title must be 1-120 characters, not 121",
            "description is 8193 bytes; at most 8192 are kept (fix: link to a longer text)",
            "voting_period_seconds 0 is outside 1..=7776000 (1 s to 90 days)",
            r#"a parameter proposal needs `parameter` (fix: add it, e.g. "parameter": {"name": "networkFeeBasisPoints", "value": 300})"#,
            r#"mint.account "bank" is not an account (fix: use client:<account id>, node:<node uuid> or treasury)"#,
            "a signal proposal takes no `parameter` (fix: remove it)",
        ];
        assert_eq!(text, want);
    }

    #[test]
    fn mints_go_only_to_the_treasury_clients_and_nodes() {
        let mint = |account: &str| NewProposal {
            kind: ProposalKind::Mint,
            mint: Some(MintProposal {
                account: account.into(),
                amount_ugai: 5,
            }),
            ..signal()
        };
        let node = uuid::Uuid::new_v4();
        for good in [
            "treasury".to_string(),
            "client:0123abcd".into(),
            format!("node:{node}"),
        ] {
            let valid = check(mint(&good), 60, NOW).expect(&good);
            assert!(
                matches!(&valid.action, Action::Mint { account, amount: 5 } if account.key() == good),
                "{good}: {valid:?}"
            );
        }
        for bad in [
            "issuer",
            "escrow:6f9619ff-8b86-d011-b42d-00c04fc964ff",
            "node:x",
            "client:",
        ] {
            assert!(
                matches!(
                    check(mint(bad), 60, NOW),
                    Err(ProposalError::MintAccount { .. })
                ),
                "{bad}"
            );
        }
    }
}
