//! The secret scan's list (`scripts/secret-scan.sh --suite`): under `PONTE_SCAN_DIR`, every
//! credential a sandbox is configured with or issues (client secrets, passwords, webhook secrets
//! and codes, API tokens, authorization codes, access and refresh tokens) is appended to
//! `<dir>/secrets-<pid>.txt`, one a line, so the scan knows what to look for in the logs and
//! spans of the whole test suite. Without the variable nothing is written.

use std::{
    fs::File,
    io::Write,
    sync::{Mutex, OnceLock},
};

/// The directory the scan collects into, when one is running.
pub fn dir() -> Option<String> {
    std::env::var("PONTE_SCAN_DIR").ok().filter(|d| !d.is_empty())
}

fn file() -> Option<&'static Mutex<File>> {
    static FILE: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    FILE.get_or_init(|| {
        let dir = dir()?;
        let path = format!("{dir}/secrets-{}.txt", std::process::id());
        File::options().create(true).append(true).open(path).ok().map(Mutex::new)
    })
    .as_ref()
}

/// Adds `secrets` to the scan's list (values shorter than 8 characters are too common to look
/// for and are left out).
pub fn record<S: AsRef<str>>(secrets: impl IntoIterator<Item = S>) {
    let Some(file) = file() else { return };
    let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
    for s in secrets {
        let s = s.as_ref();
        if s.len() >= 8 && !s.contains('\n') {
            let _ = writeln!(file, "{s}");
        }
    }
}
