//! systemd socket activation, the part Cerebro needs: take the one listening socket systemd
//! passed (`LISTEN_PID`/`LISTEN_FDS`, first descriptor 3), so that a connection to the
//! daemon's port starts the daemon and nothing is lost while it starts (systemd holds the
//! connection in the socket's backlog).

use std::os::fd::{FromRawFd as _, RawFd};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The descriptor passed to this process, read from the two variables as `sd_listen_fds`
/// reads them: `None` when there is none or they were meant for another process (a
/// `LISTEN_PID` that is not `pid`: inherited from a parent that was activated); an error
/// when they are malformed, or pass more than one socket (the daemon's unit listens on one).
pub fn listen_fd(
    listen_pid: Option<&str>,
    listen_fds: Option<&str>,
    pid: u32,
) -> Result<Option<RawFd>, String> {
    let Some(listen_pid) = listen_pid else {
        return Ok(None);
    };
    let listen_pid: u32 = listen_pid
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_PID is not a process id: {listen_pid:?}"))?;
    if listen_pid != pid {
        return Ok(None);
    }
    let count = listen_fds.unwrap_or("0");
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("LISTEN_FDS is not a count: {count:?}"))?;
    match count {
        0 => Ok(None),
        1 => Ok(Some(LISTEN_FDS_START)),
        n => Err(format!(
            "systemd passed {n} sockets; the daemon's unit must listen on exactly one \
             (ListenStream=127.0.0.1:PORT)"
        )),
    }
}

/// The listening socket systemd passed this process, if any, as a non-blocking listener;
/// the variables are removed so that nothing the daemon runs inherits them.
///
/// An error when the descriptor passed is not a listening TCP socket.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    let fd = listen_fd(pid.as_deref(), fds.as_deref(), std::process::id())?;
    for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(key);
    }
    let Some(fd) = fd else {
        return Ok(None);
    };
    // SAFETY: systemd passed this descriptor to this process for it to own (LISTEN_PID is
    // ours), and nothing else in the process uses descriptor 3 by that contract. It is
    // duplicated first (close-on-exec), so that a descriptor that is not open is an error
    // here rather than a double close later.
    let copy = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) }
        .try_clone_to_owned()
        .map_err(|e| format!("descriptor {fd} passed by systemd is not open: {e}"))?;
    // SAFETY: open (it was just duplicated) and ours, as above; closed here once.
    drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
    let listener = std::net::TcpListener::from(copy);
    listener
        .local_addr()
        .map_err(|e| format!("descriptor {fd} passed by systemd is not a TCP socket: {e}"))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("descriptor {fd} passed by systemd: {e}"))?;
    Ok(Some(listener))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_for_this_process_is_taken() {
        assert_eq!(listen_fd(Some("42"), Some("1"), 42), Ok(Some(3)));
        assert_eq!(listen_fd(Some(" 42\n"), Some("1"), 42), Ok(Some(3)));
    }

    #[test]
    fn nothing_passed_or_meant_for_another_process() {
        assert_eq!(listen_fd(None, None, 42), Ok(None));
        assert_eq!(listen_fd(None, Some("1"), 42), Ok(None));
        assert_eq!(listen_fd(Some("41"), Some("1"), 42), Ok(None));
        assert_eq!(listen_fd(Some("42"), Some("0"), 42), Ok(None));
        assert_eq!(listen_fd(Some("42"), None, 42), Ok(None));
    }

    #[test]
    fn malformed_or_several_sockets_are_errors() {
        let e = listen_fd(Some("x"), Some("1"), 42).unwrap_err();
        assert!(e.contains("LISTEN_PID"), "{e}");
        let e = listen_fd(Some("42"), Some("one"), 42).unwrap_err();
        assert!(e.contains("LISTEN_FDS"), "{e}");
        let e = listen_fd(Some("42"), Some("2"), 42).unwrap_err();
        assert!(e.contains("2 sockets"), "{e}");
    }
}
