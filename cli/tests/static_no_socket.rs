//! Static commands never open a socket, resolve a name or start a process:
//! proven by running each under `strace -f -e trace=socket,connect,execve`.
//! The test fails (never skips) when strace is missing or cannot trace.

mod common;
use common::*;
use std::process::Command;

fn strace_available() -> bool {
    Command::new("strace")
        .args(["-f", "-o", "/dev/null", "true"])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Runs netgrant under strace and returns the trace.
fn trace(args: &[String]) -> (i32, String) {
    let bin = assert_cmd::cargo::cargo_bin("netgrant");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace");
    let status = Command::new("strace")
        .arg("-f")
        .arg("-qq")
        .args([
            "-e",
            "trace=socket,socketpair,connect,bind,sendto,sendmsg,execve,execveat,fork,vfork,clone3",
        ])
        .arg("-o")
        .arg(&log)
        .arg(&bin)
        .args(args)
        .current_dir(root())
        .env("NO_COLOR", "1")
        .output()
        .expect("strace runs");
    (
        status.status.code().unwrap_or(-1),
        std::fs::read_to_string(&log).unwrap_or_default(),
    )
}

fn static_invocations() -> Vec<Vec<String>> {
    let mut v: Vec<Vec<String>> = Vec::new();
    let s = |x: &[&str]| x.iter().map(|a| a.to_string()).collect::<Vec<String>>();
    let dir = tempfile::tempdir().unwrap().keep();
    for ex in examples() {
        let m = format!("examples/{ex}/plugin.toml");
        let g = format!("examples/{ex}/grant.toml");
        let ir = dir
            .join(format!("{ex}.json"))
            .to_string_lossy()
            .into_owned();
        v.push(s(&["check", &m, "--grant", &g]));
        v.push(s(&["check", &m, "--grant", &g, "--format", "sarif"]));
        v.push(s(&["check", &m, "--deny-broad", "--format", "github"]));
        v.push(s(&["compile", &m, "--grant", &g, "-o", &ir]));
        v.push(s(&["show", &m, "--grant", &g]));
        v.push(s(&["show", &ir, "--format", "json"]));
        v.push(s(&["show", &m, "--grant", &g, "--format", "markdown"]));
        v.push(s(&["diff", &m, &ir, "--fail-on", "any"]));
        v.push(s(&[
            "diff",
            "examples/discord-bridge/plugin.toml",
            &m,
            "--grant",
            &g,
            "--format",
            "markdown",
        ]));
        for (cap, url) in [
            ("websocket", "wss://gateway.discord.gg/"),
            ("request", "https://example.com/a"),
            ("websocket", "ws://localhost:9000/"),
        ] {
            v.push(s(&[
                "authorize",
                "--manifest",
                &m,
                "--grant",
                &g,
                "--capability",
                cap,
                url,
            ]));
            v.push(s(&[
                "authorize",
                "--policy",
                &ir,
                "--capability",
                cap,
                "--resolve",
                "gateway.discord.gg=1.2.3.4",
                "--resolve",
                "example.com=",
                url,
            ]));
        }
    }
    for k in ["manifest", "grant", "ir", "list-output", "diff-output"] {
        v.push(s(&["schema", k]));
    }
    // approve and list (approve writes into a temp dir).
    for ex in examples() {
        let m = format!("examples/{ex}/plugin.toml");
        let g = format!("examples/{ex}/grant.toml");
        let out = dir
            .join(format!("{ex}-grant.toml"))
            .to_string_lossy()
            .into_owned();
        v.push(s(&["approve", &m, "--grant", &g, "--yes", "--allow-broad"]));
        v.push(s(&["approve", &m, "--yes", "--allow-broad", "-o", &out]));
    }
    v.push(s(&["list", "examples"]));
    v.push(s(&["list", "examples", "--format", "json"]));
    v.push(s(&[
        "list", "examples", "--grants", "examples", "--format", "markdown",
    ]));
    v.push(s(&[
        "diff",
        "examples/discord-bridge/plugin.toml",
        "examples/discord-bridge/update/plugin.toml",
        "--grant",
        "examples/discord-bridge/grant.toml",
        "--format",
        "json",
    ]));
    // Every example through explain, replay and diff as well.
    for ex in examples() {
        let m = format!("examples/{ex}/plugin.toml");
        let g = format!("examples/{ex}/grant.toml");
        v.push(s(&[
            "explain",
            "--manifest",
            &m,
            "--grant",
            &g,
            "--capability",
            "request",
            "--method",
            "POST",
            "https://discord.com/api/v9/x",
        ]));
        v.push(s(&[
            "replay",
            "--manifest",
            &m,
            "--grant",
            &g,
            "examples/discord-bridge/traffic.jsonl",
        ]));
        v.push(s(&["diff", &m, &m, "--grant", &g, "--format", "markdown"]));
    }
    let (m, g) = (
        "examples/discord-bridge/plugin.toml",
        "examples/discord-bridge/grant.toml",
    );
    for url in ["wss://gateway.discord.gg/", "wss://unknown.example/"] {
        v.push(s(&[
            "explain",
            "--manifest",
            m,
            "--grant",
            g,
            "--capability",
            "websocket",
            "--resolve",
            "gateway.discord.gg=1.2.3.4",
            url,
        ]));
    }
    v.push(s(&[
        "replay",
        "--manifest",
        m,
        "--grant",
        g,
        "--against-manifest",
        m,
        "--against-grant",
        "examples/discord-bridge/grant.next.toml",
        "--format",
        "json",
        "examples/discord-bridge/traffic.jsonl",
    ]));
    v
}

#[test]
fn static_commands_open_no_socket_and_start_no_process() {
    assert!(
        strace_available(),
        "strace is required for this test (apt-get install strace); .ci/run installs it"
    );
    let invocations = static_invocations();
    assert!(invocations.len() > 40);
    let mut problems = Vec::new();
    for args in &invocations {
        let (code, log) = trace(args);
        assert!(
            code == 0 || code == 1 || code == 2,
            "{args:?}: strace exit {code}"
        );
        let execs = log.lines().filter(|l| l.contains("execve(")).count();
        if execs != 1 {
            problems.push(format!(
                "{args:?}: {execs} execve calls (expected just netgrant itself)\n{log}"
            ));
        }
        for l in log.lines() {
            let bad = l.contains("socket(")
                || l.contains("socketpair(")
                || l.contains("connect(")
                || l.contains("bind(")
                || l.contains("sendto(")
                || l.contains("sendmsg(")
                || l.contains("fork(")
                || l.contains("clone3(");
            if bad {
                problems.push(format!("{args:?}: {l}"));
            }
        }
        // The trace must have seen the program start, or it proves nothing.
        assert!(log.contains("execve("), "{args:?}: empty trace: {log:?}");
    }
    assert!(
        problems.is_empty(),
        "static commands touched the network or spawned:\n{}",
        problems.join("\n")
    );
}

#[test]
fn tracer_detects_a_socket() {
    // The detector itself must be able to fail: trace a program that does open a socket.
    assert!(strace_available(), "strace is required for this test");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("trace");
    let out = Command::new("strace")
        .args(["-f", "-qq", "-e", "trace=socket,connect", "-o"])
        .arg(&log)
        .args([
            "python3",
            "-c",
            "import socket; socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()",
        ])
        .output()
        .expect("strace runs");
    assert!(out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("socket(AF_INET"), "{text}");
}
