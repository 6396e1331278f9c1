//! Refuses a listen address another process already uses. libp2p's TCP listener
//! sets `SO_REUSEPORT`, so a second `yrd` on the same port would bind too and the
//! kernel would share the incoming connections between the two processes. A plain
//! probe socket (without `SO_REUSEPORT`) cannot bind a port any socket holds, so
//! binding one for a moment and closing it tells whether the port is free.

use std::net::{IpAddr, SocketAddr, TcpListener};

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// The TCP socket address of a `/ip4|ip6/…/tcp/PORT` multiaddr, if it has one.
pub fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut ip: Option<IpAddr> = None;
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(a.into()),
            Protocol::Ip6(a) => ip = Some(a.into()),
            Protocol::Tcp(port) => return ip.map(|ip| SocketAddr::new(ip, port)),
            _ => {}
        }
    }
    None
}

/// `Err(reason)` when another socket holds the listen port. Port 0 (any free port)
/// and addresses that are not TCP are not checked.
pub fn check_free(addr: &Multiaddr) -> Result<(), String> {
    let Some(sa) = socket_addr(addr) else { return Ok(()) };
    if sa.port() == 0 {
        return Ok(());
    }
    match TcpListener::bind(sa) {
        Ok(probe) => {
            drop(probe);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(format!(
            "port {} is already in use on {} (another yrd node, or another program, listens there): stop it or \
             change `listen` in the config",
            sa.port(),
            sa.ip()
        )),
        Err(e) => Err(format!("cannot bind {sa}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_in_use_is_refused_and_a_free_one_accepted() {
        let held = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
        let e = check_free(&addr).unwrap_err();
        assert!(e.contains(&format!("port {port} is already in use")), "{e}");
        drop(held);
        assert_eq!(check_free(&addr), Ok(()));
        assert_eq!(check_free(&"/ip4/127.0.0.1/tcp/0".parse().unwrap()), Ok(()));
    }
}
