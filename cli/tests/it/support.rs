//! What the binary's tests share: the `ponte` command with a clean environment, free local
//! ports, and child processes that are killed when a test ends, panicking or not.

use std::{net::SocketAddr, process::Command};

/// The `ponte` binary, with nothing of the test's environment but `PATH`.
pub fn ponte() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ponte"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    cmd
}

/// A free address on 127.0.0.1.
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// A base port with `n` free ports from it, picked away from the defaults.
pub fn free_port_block(n: u16) -> u16 {
    for i in 0..200_u16 {
        let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let base = 21_000 + ((seed as u16 ^ std::process::id() as u16).wrapping_add(i * 97) % 18_000);
        if (0..n).all(|k| std::net::TcpListener::bind(("127.0.0.1", base + k)).is_ok()) {
            return base;
        }
    }
    panic!("no free block of ports");
}

/// A child process killed (and reaped) when dropped, unless a test takes it first.
pub struct Killed(Option<std::process::Child>);

impl Killed {
    pub fn new(child: std::process::Child) -> Self {
        Self(Some(child))
    }

    /// The process, for a test that stops it itself.
    pub fn take(&mut self) -> std::process::Child {
        self.0.take().expect("the process was taken already")
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
