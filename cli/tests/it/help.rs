//! `ponte --help` and the help of every subcommand (and of theirs) answer with a usage line and
//! exit 0.

use crate::support::ponte;

/// The subcommands a help text lists under "Commands:".
fn commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

fn help(path: &[String]) -> String {
    let out = ponte().args(path).arg("--help").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ponte {path:?} --help: {}", String::from_utf8_lossy(&out.stderr));
    let usage = format!("Usage: ponte{}", path.iter().map(|p| format!(" {p}")).collect::<String>());
    assert!(stdout.lines().any(|l| l.starts_with(&usage)), "ponte {path:?} --help: {stdout}");
    stdout
}

#[test]
fn every_command_answers_help() {
    let mut todo = vec![Vec::new()];
    let mut seen = 0;
    while let Some(path) = todo.pop() {
        let text = help(&path);
        seen += 1;
        for c in commands(&text) {
            let mut sub = path.clone();
            sub.push(c);
            todo.push(sub);
        }
    }
    assert!(seen > 20, "only {seen} commands");
    for top in ["history", "backfill", "completions"] {
        assert!(commands(&help(&[])).iter().any(|c| c == top), "{top} is not a command");
    }
}

#[test]
fn completion_scripts_for_bash_zsh_and_fish() {
    for (shell, marker) in [("bash", "complete -F"), ("zsh", "#compdef ponte"), ("fish", "complete -c ponte")] {
        let out = ponte().args(["completions", shell]).output().unwrap();
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(script.contains(marker), "{shell}: {script}");
        assert!(script.contains("backfill") && script.contains("history"), "{shell} lacks commands");
    }
    let out = ponte().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
