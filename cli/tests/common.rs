//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use assert_cmd::Command;
use std::path::{Path, PathBuf};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `netgrant` with the workspace root as working directory and no colour.
pub fn netgrant() -> Command {
    let mut c = Command::cargo_bin("netgrant").unwrap();
    c.current_dir(root()).env("NO_COLOR", "1");
    c
}

/// Every example directory name.
pub fn examples() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(root().join("examples"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("plugin.toml").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Writes `text` to `name` in a fresh temp dir and returns (dir, path).
pub fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    (dir, p)
}

/// Runs and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `python3` command that can `import websockets`, for the interop peer.
///
/// The system `python3` is used as it is when it already has the package;
/// otherwise `websockets` is installed once, project-locally, into
/// `target/tmp/py-peer` (`pip install --target`: no venv, nothing outside
/// the build directory) and put on `PYTHONPATH`. So `cargo test --workspace`
/// sets its own peer up on a fresh machine. When neither works the caller's
/// test fails with the reason — it never skips.
pub fn python_with_websockets() -> std::process::Command {
    use std::process::Command;
    let imports = |path: Option<&Path>| {
        let mut c = Command::new("python3");
        c.args(["-c", "import websockets"]);
        if let Some(p) = path {
            c.env("PYTHONPATH", p);
        }
        c.output().is_ok_and(|o| o.status.success())
    };
    let with_path = |path: Option<&Path>| {
        let mut c = Command::new("python3");
        if let Some(p) = path {
            c.env("PYTHONPATH", p);
        }
        c
    };
    if imports(None) {
        return with_path(None);
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("py-peer");
    if imports(Some(&dir)) {
        return with_path(Some(&dir));
    }
    // Install into a private directory, then rename it into place: tests in
    // other processes may race here, and a rename is atomic (the loser's
    // copy is discarded, the winner's is complete).
    let staging =
        Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("py-peer.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let out = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
        ])
        .arg(&staging)
        .arg("websockets>=12")
        .output()
        .expect("python3 must be installed for the interop test");
    assert!(
        out.status.success(),
        "the interop test needs the Python package `websockets` (never skipped), \
         and installing it into {} failed:\n{}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    if std::fs::rename(&staging, &dir).is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    assert!(
        imports(Some(&dir)),
        "`websockets` installed into {} but cannot be imported",
        dir.display()
    );
    with_path(Some(&dir))
}
