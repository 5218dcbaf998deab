//! The client source: the peer's address, or behind trusted proxies the address they
//! saw (`X-Forwarded-For`, believed only from a trusted proxy), an IPv6 client by its /64.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// An address block, `ADDR/LEN` (a bare address is a block of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    len: u8,
}

/// A text that is not an address block.
#[derive(Debug, thiserror::Error)]
#[error("not an address block (ADDR/LEN)")]
#[non_exhaustive]
pub struct InvalidCidr;

impl std::str::FromStr for Cidr {
    type Err = InvalidCidr;

    fn from_str(text: &str) -> Result<Self, InvalidCidr> {
        let bad = || InvalidCidr;
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let len = match len {
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self {
            net: mask(net, len),
            len,
        })
    }
}

/// `ip` with every bit after the first `len` cleared.
fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

impl Cidr {
    /// Whether `ip` is in the block (an IPv4-mapped IPv6 address as its IPv4 address).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        ip.is_ipv4() == self.net.is_ipv4() && mask(ip, self.len) == self.net
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The source a request is counted by (and a session records): the peer's address, or, when the peer is one of
/// `proxies`, the right-most address of `X-Forwarded-For` that is not a trusted proxy
/// (what a client writes there itself stands left of what the proxy appended, and is
/// never believed). An IPv6 client counts by its /64: a customer's line gets a /64, and
/// taking a new address inside it costs nothing.
pub fn client_source(peer: SocketAddr, headers: &HeaderMap, proxies: &[Cidr]) -> String {
    let trusted = |ip: IpAddr| proxies.iter().any(|c| c.contains(ip));
    let mut client = canonical(peer.ip());
    if trusted(client) {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            // A hop that does not parse ends the walk: the last believed address stands.
            // An address, or one with a port as some proxies write it (`1.2.3.4:5678`,
            // `[2001:db8::1]:443`), or bracketed.
            let parsed = hop
                .parse::<IpAddr>()
                .or_else(|_| hop.parse::<SocketAddr>().map(|a| a.ip()))
                .or_else(|_| hop.trim_start_matches('[').trim_end_matches(']').parse());
            let Ok(ip) = parsed.map(canonical) else {
                break;
            };
            client = ip;
            if !trusted(ip) {
                break;
            }
        }
    }
    match client {
        IpAddr::V6(_) => format!("{}/64", mask(client, 64)),
        v4 => v4.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(peer: &str, xff: &[&str], proxies: &[&str]) -> String {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().expect("header"));
        }
        let proxies: Vec<Cidr> = proxies.iter().map(|p| p.parse().expect("cidr")).collect();
        client_source(peer.parse().expect("addr"), &headers, &proxies)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
        // No trusted proxy: the header is the client's own words.
        assert_eq!(
            source("198.51.100.7:5000", &["1.2.3.4"], &[]),
            "198.51.100.7"
        );
        // From the proxy: the address it appended.
        let via = |xff: &[&str]| source("10.0.0.2:5000", xff, &["10.0.0.0/24"]);
        assert_eq!(via(&["203.0.113.9"]), "203.0.113.9");
        // A client that writes its own header stands left of what the proxy appended.
        assert_eq!(via(&["6.6.6.6, 203.0.113.9"]), "203.0.113.9");
        assert_eq!(via(&["6.6.6.6", "203.0.113.9"]), "203.0.113.9");
        // Two trusted hops: the first untrusted address from the right.
        assert_eq!(via(&["203.0.113.9, 10.0.0.7"]), "203.0.113.9");
        // With a port, or bracketed.
        assert_eq!(via(&["203.0.113.9:5678"]), "203.0.113.9");
        assert_eq!(via(&["[2001:db8::1]:443"]), "2001:db8::/64");
        assert_eq!(via(&["[2001:db8::1]"]), "2001:db8::/64");
        // Nothing usable: the proxy's own address.
        assert_eq!(via(&[]), "10.0.0.2");
        assert_eq!(via(&["garbage"]), "10.0.0.2");
        // A proxy outside the block is not believed.
        assert_eq!(
            source("10.0.1.2:5000", &["203.0.113.9"], &["10.0.0.0/24"]),
            "10.0.1.2"
        );
    }

    #[test]
    fn an_ipv6_client_counts_by_its_slash_64() {
        assert_eq!(
            source("[2001:db8:1:2:aaaa::1]:443", &[], &[]),
            source("[2001:db8:1:2:bbbb::9]:443", &[], &[])
        );
        assert_ne!(
            source("[2001:db8:1:2::1]:443", &[], &[]),
            source("[2001:db8:1:3::1]:443", &[], &[])
        );
        assert_eq!(source("[::ffff:192.0.2.1]:80", &[], &[]), "192.0.2.1");
    }

    #[test]
    fn address_blocks_parse_strictly() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/x",
            "host/8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        let c: Cidr = "10.1.2.3/8".parse().expect("cidr");
        assert!(c.contains("10.200.0.1".parse().expect("ip")));
        assert!(!c.contains("11.0.0.1".parse().expect("ip")));
        let all: Cidr = "0.0.0.0/0".parse().expect("cidr");
        assert!(all.contains("192.0.2.1".parse().expect("ip")));
        assert!(!all.contains("2001:db8::1".parse().expect("ip")));
    }
}
