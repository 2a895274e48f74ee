//! Who is calling back: the local user that owns a loopback peer's socket. On Linux the
//! kernel lists every TCP socket with its owner in `/proc/net/tcp` and `/proc/net/tcp6`; the
//! client end of an accepted connection is the row whose local address is the peer's and
//! whose remote address is ours. Another user's connection is refused (login CSRF: another
//! user who read the `state` from the browser opener's argv delivers their own code).

use std::net::{IpAddr, SocketAddr};

/// Whether a connection from `peer` to `local` may be served: its socket belongs to this
/// user or to root (SSH port forwarding, container proxies), or its owner cannot be told
/// (not Linux, no `/proc`). `Err(uid)` names the other user.
pub(crate) fn allowed(peer: SocketAddr, local: SocketAddr) -> Result<(), u32> {
    match owner(peer, local) {
        Some(uid) if uid != 0 && uid != rustix::process::geteuid().as_raw() => Err(uid),
        _ => Ok(()),
    }
}

/// The uid owning the client socket `peer` connected to `local`, from the kernel's table.
fn owner(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let table = match peer.ip() {
        IpAddr::V4(_) => "/proc/net/tcp",
        IpAddr::V6(_) => "/proc/net/tcp6",
    };
    let text = std::fs::read_to_string(table).ok()?;
    owner_in(&text, peer, local)
}

/// The uid column of the row `peer → local` in a `/proc/net/tcp{,6}` table.
fn owner_in(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let (from, to) = (proc_address(peer), proc_address(local));
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (l, r, uid) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        (l.eq_ignore_ascii_case(&from) && r.eq_ignore_ascii_case(&to))
            .then(|| uid.parse().ok())
            .flatten()
    })
}

/// An address as the kernel prints it: each 32-bit word of the address in host byte order as
/// `%08X`, then `:` and the port as `%04X`.
fn proc_address(addr: SocketAddr) -> String {
    let words: Vec<[u8; 4]> = match addr.ip() {
        IpAddr::V4(ip) => vec![ip.octets()],
        IpAddr::V6(ip) => ip
            .octets()
            .chunks(4)
            .map(|c| [c[0], c[1], c[2], c[3]])
            .collect(),
    };
    let hex: String = words
        .iter()
        .map(|w| format!("{:08X}", u32::from_ne_bytes(*w)))
        .collect();
    format!("{hex}:{:04X}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_endian = "little")]
    fn addresses_read_as_the_kernel_prints_them() {
        let v4: SocketAddr = "127.0.0.1:48842".parse().unwrap();
        assert_eq!(proc_address(v4), "0100007F:BECA");
        let v6: SocketAddr = "[::1]:3000".parse().unwrap();
        assert_eq!(proc_address(v6), "00000000000000000000000001000000:0BB8");
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
                     1: 0100007F:BECA 0100007F:0BB8 01 00000000:00000000 00:00000000 00000000  4242        0 0 3 0\n   \
                     2: 0100007F:0BB8 0100007F:BECA 01 00000000:00000000 00:00000000 00000000     0        0 0 3 0\n";
        let local: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert_eq!(owner_in(table, v4, local), Some(4242));
        assert_eq!(owner_in(table, local, v4), Some(0));
        assert_eq!(owner_in(table, "127.0.0.1:1".parse().unwrap(), local), None);
    }

    /// A real connection on this machine: the kernel's table says it is this user's.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_connection_of_this_process_is_this_user_s() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let me = rustix::process::geteuid().as_raw();
        assert_eq!(owner(peer, listener.local_addr().unwrap()), Some(me));
        assert_eq!(allowed(peer, listener.local_addr().unwrap()), Ok(()));
    }
}
