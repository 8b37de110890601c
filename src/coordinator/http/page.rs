//! Pagination of the list endpoints: `limit` (default and maximum in
//! [`super::limits`]) and an opaque `continue` token naming where the next
//! page starts (hex of the list's kind and the last key served).

use serde::Deserialize;

use super::error::ApiError;
use super::limits::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};

/// `?limit=N&continue=TOKEN` of a list endpoint.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page: 1-500, default 100.
    pub limit: Option<u32>,
    /// The `continue` value of the previous page; absent for the first page.
    #[serde(rename = "continue")]
    pub continue_token: Option<String>,
}

/// Which list a `continue` token belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Nodes,
    Markets,
    Heartbeats,
    JoinTokens,
    Accounts,
    Jobs,
    Transfers,
    Proposals,
    Votes,
}

impl ListKind {
    fn tag(self) -> &'static str {
        match self {
            ListKind::Nodes => "nodes",
            ListKind::Markets => "markets",
            ListKind::Heartbeats => "heartbeats",
            ListKind::JoinTokens => "join-tokens",
            ListKind::Accounts => "accounts",
            ListKind::Jobs => "jobs",
            ListKind::Transfers => "transfers",
            ListKind::Proposals => "proposals",
            ListKind::Votes => "votes",
        }
    }
}

/// A checked page request: how many items, and after which key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub after: Option<String>,
}

impl PageQuery {
    /// Checks `limit` and decodes `continue` for a list of `kind`.
    pub fn page(&self, kind: ListKind) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(ApiError::bad_request(
                "invalid_limit",
                format!("limit={limit} is out of range; use 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})"),
            ));
        }
        let after = self
            .continue_token
            .as_deref()
            .map(|token| decode(kind, token))
            .transpose()?;
        Ok(Page { limit, after })
    }
}

impl Page {
    /// Where the page starts, read from the decoded key by `parse`; a key
    /// it cannot read is 400 (`what`: the kind of item the list holds).
    pub fn after_as<T>(
        &self,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, ApiError> {
        self.after
            .as_deref()
            .map(|key| {
                parse(key).ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_continue",
                        format!("the continue token names no {what}"),
                    )
                })
            })
            .transpose()
    }
}

/// The token that continues a list of `kind` after `last_key`.
pub fn encode(kind: ListKind, last_key: &str) -> String {
    hex::encode(format!("{}:{last_key}", kind.tag()))
}

fn decode(kind: ListKind, token: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request(
            "invalid_continue",
            format!(
                "continue={token:?} is not a continue token of this list; pass the `continue` \
                 value of the previous page unchanged, or none for the first page"
            ),
        )
    };
    let text = hex::decode(token)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(invalid)?;
    text.strip_prefix(kind.tag())
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_string)
        .ok_or_else(invalid)
}

/// Splits one extra fetched item off `items` (fetch `limit + 1` to know
/// whether there is more) and returns the `continue` token for the rest.
pub fn finish<T>(
    items: &mut Vec<T>,
    page: &Page,
    kind: ListKind,
    key: impl Fn(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| encode(kind, &key(last)))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(limit: Option<u32>, token: Option<&str>) -> PageQuery {
        PageQuery {
            limit,
            continue_token: token.map(str::to_string),
        }
    }

    #[test]
    fn limits_default_and_are_bounded() {
        assert_eq!(
            query(None, None).page(ListKind::Nodes).expect("ok"),
            Page {
                limit: DEFAULT_PAGE_SIZE,
                after: None
            }
        );
        for bad in [0, MAX_PAGE_SIZE + 1] {
            let err = query(Some(bad), None)
                .page(ListKind::Nodes)
                .expect_err("out of range");
            assert_eq!(err.code, "invalid_limit");
        }
    }

    #[test]
    fn a_token_continues_only_its_own_list() {
        let token = encode(ListKind::Nodes, "abc");
        let page = query(Some(2), Some(&token))
            .page(ListKind::Nodes)
            .expect("ok");
        assert_eq!(page.after.as_deref(), Some("abc"));
        for other in [
            ListKind::Markets,
            ListKind::Heartbeats,
            ListKind::JoinTokens,
        ] {
            let err = query(None, Some(&token))
                .page(other)
                .expect_err("other list");
            assert_eq!(err.code, "invalid_continue");
        }
        let err = query(None, Some("zz"))
            .page(ListKind::Nodes)
            .expect_err("junk");
        assert_eq!(err.code, "invalid_continue");
    }

    #[test]
    fn finish_keeps_the_page_and_names_its_last_key() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let mut items = vec![1, 2, 3];
        let next = finish(&mut items, &page, ListKind::Nodes, ToString::to_string);
        assert_eq!(items, [1, 2]);
        assert_eq!(next, Some(encode(ListKind::Nodes, "2")));
        let mut items = vec![1, 2];
        assert_eq!(
            finish(&mut items, &page, ListKind::Nodes, ToString::to_string),
            None
        );
    }
}
