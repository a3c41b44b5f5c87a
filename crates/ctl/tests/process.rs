//! chorusctl as a process: what a script sees (standard output, standard error, exit
//! status) for the commands that need no server, as etcdctl 3.4 prints them. Being an
//! integration test, it also makes `cargo test --workspace` build `target/debug/chorusctl`
//! with the tests' features, which the end-to-end suite (tests/suite.rs) then runs.

use std::process::{Command, Output};

fn chorusctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_chorusctl"))
        .args(args)
        .env_remove("ETCDCTL_API")
        .output()
        .expect("run chorusctl")
}

#[test]
fn version_prints_etcdctls_two_lines() {
    let out = chorusctl(&["version"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("etcdctl version: 3."), "{stdout}");
    assert!(lines[1].starts_with("API version: 3."), "{stdout}");
}

#[test]
fn an_unknown_command_fails_with_etcdctls_message() {
    let out = chorusctl(&["nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stderr).unwrap(),
        "Error: unknown command \"nosuch\" for \"etcdctl\"\n\
         Run 'etcdctl --help' for usage.\n\
         Error: unknown command \"nosuch\" for \"etcdctl\"\n"
    );
}
