//! Who holds leases, runs and the crawler lock: `<pid>@<host>`, and whether that
//! process still lives. On this host the kernel says at once whether the pid exists;
//! another host's holder is trusted until its lease or heartbeat expires.

/// `<pid>@<host>` of this process.
pub fn holder_name() -> String {
    format!("{}@{}", std::process::id(), this_host())
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
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
