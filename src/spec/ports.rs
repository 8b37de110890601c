//! Host-port conflicts among everything a node binds on the host: the
//! agent's metrics endpoint, the worker and the user's containers. Two
//! bindings clash when they share port and protocol and their addresses
//! overlap (unset, `0.0.0.0` and `::` cover more than one address). Each
//! binding is checked in constant time, so a spec of many ports stays linear.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use super::container_spec::{PortBinding, Protocol};

/// The addresses one binding takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// Unset (Docker binds IPv4 and IPv6) or `::` (dual-stack on Linux).
    All,
    /// `0.0.0.0`.
    AllV4,
    One(IpAddr),
}

impl Scope {
    /// `port_binding` has already checked that the address parses.
    fn of(host_ip: Option<&str>) -> Scope {
        match host_ip.and_then(|ip| ip.parse::<IpAddr>().ok()) {
            None => Scope::All,
            Some(ip) if ip.is_unspecified() && ip.is_ipv6() => Scope::All,
            Some(ip) if ip.is_unspecified() => Scope::AllV4,
            Some(ip) => Scope::One(ip),
        }
    }

    fn describe(self) -> String {
        match self {
            Scope::All => "all addresses".into(),
            Scope::AllV4 => "0.0.0.0".into(),
            Scope::One(ip) => ip.to_string(),
        }
    }
}

/// Who holds one port and protocol, by kind of address.
#[derive(Debug, Default)]
struct Holders {
    all: Option<String>,
    all_v4: Option<String>,
    any_v4: Option<(IpAddr, String)>,
    any_v6: Option<(IpAddr, String)>,
    one: HashMap<IpAddr, String>,
}

impl Holders {
    /// The holder `scope` would clash with, and the address it holds.
    fn clash(&self, scope: Scope) -> Option<(String, Scope)> {
        let all = || self.all.clone().map(|who| (who, Scope::All));
        let all_v4 = || self.all_v4.clone().map(|who| (who, Scope::AllV4));
        let one = |held: &Option<(IpAddr, String)>| {
            held.as_ref()
                .map(|(ip, who)| (who.clone(), Scope::One(*ip)))
        };
        match scope {
            Scope::All => all()
                .or_else(all_v4)
                .or_else(|| one(&self.any_v4))
                .or_else(|| one(&self.any_v6)),
            Scope::AllV4 => all().or_else(all_v4).or_else(|| one(&self.any_v4)),
            Scope::One(ip) => all()
                .or_else(|| if ip.is_ipv4() { all_v4() } else { None })
                .or_else(|| self.one.get(&ip).map(|who| (who.clone(), scope))),
        }
    }

    fn hold(&mut self, scope: Scope, who: String) {
        match scope {
            Scope::All => self.all = Some(who),
            Scope::AllV4 => self.all_v4 = Some(who),
            Scope::One(ip) => {
                let first = if ip.is_ipv4() {
                    &mut self.any_v4
                } else {
                    &mut self.any_v6
                };
                first.get_or_insert_with(|| (ip, who.clone()));
                self.one.insert(ip, who);
            }
        }
    }
}

/// Every host binding seen so far, by port and protocol.
#[derive(Debug, Default)]
pub(super) struct HostPorts {
    held: HashMap<(u16, bool), Holders>,
}

impl HostPorts {
    /// A table holding only the agent's own metrics endpoint (TCP).
    pub fn with_agent_metrics(listen: SocketAddr) -> HostPorts {
        let mut held: HashMap<(u16, bool), Holders> = HashMap::new();
        held.entry((listen.port(), false)).or_default().hold(
            Scope::of(Some(&listen.ip().to_string())),
            "spec.metrics.listen (the agent's metrics endpoint)".to_owned(),
        );
        HostPorts { held }
    }

    /// Takes `binding` for `who` (a field path, or a path with a note), or
    /// says why it clashes with an earlier binding.
    pub fn bind(&mut self, binding: &PortBinding, who: String) -> Result<(), String> {
        let scope = Scope::of(binding.host_ip.as_deref());
        let holders = self
            .held
            .entry((binding.host_port, binding.protocol == Protocol::Udp))
            .or_default();
        if let Some((other, held)) = holders.clash(scope) {
            let overlap = if held == scope {
                String::new()
            } else {
                format!(" on {} (overlaps {})", held.describe(), scope.describe())
            };
            return Err(format!(
                "host port {} is already bound by {other}{overlap}",
                binding.host_port
            ));
        }
        holders.hold(scope, who);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(ip: Option<&str>, port: u16, protocol: Protocol) -> PortBinding {
        PortBinding {
            host_ip: ip.map(String::from),
            host_port: port,
            container_port: port,
            protocol,
        }
    }

    fn clashes(a: Option<&str>, b: Option<&str>) -> bool {
        let mut ports = HostPorts::default();
        ports
            .bind(&binding(a, 80, Protocol::Tcp), "a".into())
            .expect("first binding");
        ports
            .bind(&binding(b, 80, Protocol::Tcp), "b".into())
            .is_err()
    }

    #[test]
    fn overlapping_addresses_clash() {
        assert!(clashes(Some("0.0.0.0"), Some("127.0.0.1")));
        assert!(clashes(Some("127.0.0.1"), Some("0.0.0.0")));
        assert!(clashes(None, Some("127.0.0.1")));
        assert!(clashes(Some("::1"), None));
        assert!(clashes(Some("::"), Some("10.0.0.1")));
        assert!(clashes(Some("127.0.0.1"), Some("127.0.0.1")));
        assert!(!clashes(Some("127.0.0.1"), Some("127.0.0.2")));
        assert!(!clashes(Some("0.0.0.0"), Some("::1")));
    }

    #[test]
    fn protocols_and_ports_are_separate() {
        let mut ports = HostPorts::default();
        let tcp = binding(None, 53, Protocol::Tcp);
        ports.bind(&tcp, "a".into()).expect("tcp");
        ports
            .bind(&binding(None, 53, Protocol::Udp), "b".into())
            .expect("udp is another port");
        ports
            .bind(&binding(None, 54, Protocol::Tcp), "c".into())
            .expect("another port");
        assert_eq!(
            ports.bind(&binding(Some("127.0.0.1"), 53, Protocol::Tcp), "d".into()),
            Err("host port 53 is already bound by a on all addresses (overlaps 127.0.0.1)".into())
        );
    }
}
