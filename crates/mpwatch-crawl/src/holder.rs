//! Who holds leases, runs and the crawler lock: `<pid>@<host>`, and whether that
//! process still lives. On this host the kernel says at once whether the pid exists;
//! another host's holder is trusted until its lease or heartbeat expires.

/// A crawler lock whose heartbeat (every 2 s) is older than this (clock seconds) is
/// abandoned: its holder is dead, or stalled long enough to be treated so.
pub const HEARTBEAT_STALE_AFTER: i64 = 60;

/// Whether the holder `<pid>@<host>` of leases or runs lives, as seen from this
/// process: on this host, whether its process exists; on another, whether it holds a
/// crawler lock with a fresh heartbeat (`live_elsewhere`: the holders of such locks).
pub fn holder_alive_given(holder: &str, live_elsewhere: &std::collections::HashSet<String>) -> bool {
    if is_local(holder) { holder_alive(holder) } else { live_elsewhere.contains(holder) }
}

/// `<pid>@<host>` of this process.
pub fn holder_name() -> String {
    format!("{}@{}", std::process::id(), this_host())
}

/// The name of this process's crawler node: '' on SQLite (one machine, one node); on
/// PostgreSQL `[node] name`, else the host name.
pub fn node_name(config: &mpwatch_core::config::Config, on_postgres: bool) -> String {
    if !on_postgres {
        return String::new();
    }
    config.node.name.clone().unwrap_or_else(this_host)
}

/// The host name from the kernel (`gethostname(2)`): a sandboxed service may not see
/// `/proc/sys`, and both sides of the crawler lock must name the host alike.
pub fn this_host() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let result = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if result != 0 {
        return "localhost".into();
    }
    let end = buffer.iter().position(|b| *b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// Whether `holder` names a process on this host.
pub fn is_local(holder: &str) -> bool {
    holder.split_once('@').is_some_and(|(_, host)| host == this_host())
}

/// Whether the holder `<pid>@<host>` may still be alive: on this host, whether the
/// process exists (`kill(pid, 0)`: a process of another user, invisible in a sandboxed
/// `/proc`, still counts); on another host, yes (its lease or heartbeat expires).
pub fn holder_alive(holder: &str) -> bool {
    let Some((pid, _)) = holder.split_once('@') else { return false };
    if !is_local(holder) {
        return true;
    }
    let Ok(pid) = pid.parse::<i32>() else { return false };
    if pid <= 0 {
        return false;
    }
    if pid as u32 == std::process::id() {
        return true;
    }
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let result = unsafe { libc::kill(pid, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_lives_and_a_finished_child_does_not() {
        assert!(holder_alive(&holder_name()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!holder_alive(&format!("{pid}@{}", this_host())));
        assert!(holder_alive(&format!("{pid}@another-host")), "another host's holder is trusted");
        assert!(!holder_alive("garbage"));
        assert!(!holder_alive(&format!("0@{}", this_host())));
    }
}
