//! Two processes saturating one Bling account through the shared limiter never get a 429.

#[test]
fn two_processes_share_the_bling_budget_without_a_single_429() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_bling-budget"))
        .args(["run", "--seconds", "6", "--scale", "2", "--callers", "16"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["rate_limited"], 0, "{report}");
    assert!(report["served"].as_u64().unwrap() > 10, "{report}");
}
