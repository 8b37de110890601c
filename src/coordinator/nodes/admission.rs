//! Admitting a new node id as a server runs it: which ticket the rules of
//! `admission_rules` ask for, the join token's use in the store, and the
//! per-address limit of open registration.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use uuid::Uuid;

use super::admission_rules::{
    AdmissionError, RegistrationMode, OPEN_REGISTRATIONS_PER_WINDOW, OPEN_WINDOW,
};
use super::join_tokens::{self, JoinToken};
use crate::coordinator::http::error::ApiError;
use crate::coordinator::http::rate_limit::{retry_after_secs, ClientAddr, SlidingWindow};
use crate::coordinator::store::Store;

/// How a new node id gets in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ticket {
    /// By this token; `must_be_bound` for a deleted id.
    Token {
        token: JoinToken,
        must_be_bound: bool,
    },
    /// By open registration, subject to the per-address limit.
    Open,
}

/// The rule: which ticket a new registration needs. A token given in open
/// mode is used (and skips the address limit).
pub fn ticket(
    mode: RegistrationMode,
    node_id: Uuid,
    deleted: bool,
    token: Option<JoinToken>,
) -> Result<Ticket, AdmissionError> {
    match (token, deleted, mode) {
        (Some(token), must_be_bound, _) => Ok(Ticket::Token {
            token,
            must_be_bound,
        }),
        (None, true, _) => Err(AdmissionError::DeletedNode { node_id }),
        (None, false, RegistrationMode::Token) => Err(AdmissionError::TokenRequired { node_id }),
        (None, false, RegistrationMode::Open) => Ok(Ticket::Open),
    }
}

/// Admission as a server runs it; cheap to clone.
#[derive(Debug, Clone)]
pub struct Admission {
    pub mode: RegistrationMode,
    open: Arc<Mutex<SlidingWindow>>,
}

impl Admission {
    pub fn new(mode: RegistrationMode) -> Self {
        Admission {
            mode,
            open: SlidingWindow::shared(OPEN_REGISTRATIONS_PER_WINDOW, OPEN_WINDOW),
        }
    }

    /// Admits the registration of an id that is not registered, using up
    /// one use of its token; refuses with the reason otherwise.
    pub async fn admit_new(
        &self,
        store: &Store,
        node_id: Uuid,
        token: Option<&str>,
        client: ClientAddr,
        now_ms: i64,
    ) -> Result<(), ApiError> {
        let token = token.map(JoinToken::parse).transpose()?;
        let deleted = store.is_tombstoned(node_id).await?;
        match ticket(self.mode, node_id, deleted, token)? {
            Ticket::Token {
                token,
                must_be_bound,
            } => {
                let stored = store.join_token(&token.id).await?;
                join_tokens::check(stored.as_ref(), &token, node_id, must_be_bound, now_ms)?;
                if !store.use_join_token(&token.id, now_ms).await? {
                    // Another registration took the last use meanwhile.
                    let uses = stored.map_or(0, |s| s.uses_total);
                    return Err(AdmissionError::UsedUpToken { id: token.id, uses }.into());
                }
                Ok(())
            }
            Ticket::Open => {
                let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
                open.try_acquire(client.0, Instant::now()).map_err(|wait| {
                    AdmissionError::RateLimited {
                        retry_after_secs: retry_after_secs(wait),
                    }
                    .into()
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_and_the_tombstone_decide_what_a_new_id_needs() {
        let id = Uuid::from_u128(1);
        let token = JoinToken::generate();
        let with = |deleted| Ticket::Token {
            token: token.clone(),
            must_be_bound: deleted,
        };
        for mode in [RegistrationMode::Token, RegistrationMode::Open] {
            assert_eq!(
                ticket(mode, id, false, Some(token.clone())),
                Ok(with(false))
            );
            assert_eq!(ticket(mode, id, true, Some(token.clone())), Ok(with(true)));
            assert_eq!(
                ticket(mode, id, true, None),
                Err(AdmissionError::DeletedNode { node_id: id })
            );
        }
        assert_eq!(
            ticket(RegistrationMode::Token, id, false, None),
            Err(AdmissionError::TokenRequired { node_id: id })
        );
        assert_eq!(
            ticket(RegistrationMode::Open, id, false, None),
            Ok(Ticket::Open)
        );
    }
}
