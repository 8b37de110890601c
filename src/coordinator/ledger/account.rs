//! Ledger accounts and their keys as stored: `issuer`, `treasury`,
//! `client:<account id>`, `node:<node uuid>`, `escrow:<job uuid>`.

use uuid::Uuid;

/// One account of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LedgerAccount {
    /// Where minted GAI come from; its balance is minus the supply.
    Issuer,
    /// Receives the network fee.
    Treasury,
    /// A client account (the id of its API key).
    Client(String),
    /// A node, paid for its jobs.
    Node(Uuid),
    /// The hold of one job, between submission and settlement.
    Escrow(Uuid),
}

impl LedgerAccount {
    /// The key stored in `ledger_accounts.account`.
    pub fn key(&self) -> String {
        match self {
            LedgerAccount::Issuer => "issuer".into(),
            LedgerAccount::Treasury => "treasury".into(),
            LedgerAccount::Client(id) => format!("client:{id}"),
            LedgerAccount::Node(id) => format!("node:{id}"),
            LedgerAccount::Escrow(job) => format!("escrow:{job}"),
        }
    }

    /// The kind stored in `ledger_accounts.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerAccount::Issuer => "issuer",
            LedgerAccount::Treasury => "treasury",
            LedgerAccount::Client(_) => "client",
            LedgerAccount::Node(_) => "node",
            LedgerAccount::Escrow(_) => "escrow",
        }
    }

    /// Parses a key; `None` for anything else.
    pub fn parse(key: &str) -> Option<Self> {
        match key {
            "issuer" => return Some(LedgerAccount::Issuer),
            "treasury" => return Some(LedgerAccount::Treasury),
            _ => {}
        }
        let (kind, id) = key.split_once(':')?;
        match kind {
            "client"
                if !id.is_empty()
                    && id.len() <= 64
                    && id.bytes().all(|b| b.is_ascii_alphanumeric()) =>
            {
                Some(LedgerAccount::Client(id.to_string()))
            }
            "node" => Uuid::parse_str(id).ok().map(LedgerAccount::Node),
            "escrow" => Uuid::parse_str(id).ok().map(LedgerAccount::Escrow),
            _ => None,
        }
    }

    /// Whether tokens may be minted into it.
    pub fn may_receive_mint(&self) -> bool {
        matches!(
            self,
            LedgerAccount::Treasury | LedgerAccount::Client(_) | LedgerAccount::Node(_)
        )
    }
}

impl std::fmt::Display for LedgerAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_strangers_are_refused() {
        let node = Uuid::new_v4();
        for account in [
            LedgerAccount::Issuer,
            LedgerAccount::Treasury,
            LedgerAccount::Client("0123abcd".into()),
            LedgerAccount::Node(node),
            LedgerAccount::Escrow(node),
        ] {
            assert_eq!(LedgerAccount::parse(&account.key()), Some(account));
        }
        for bad in ["", "client:", "client:a b", "node:42", "bank:x", "issuer:1"] {
            assert_eq!(LedgerAccount::parse(bad), None, "{bad:?}");
        }
    }
}
