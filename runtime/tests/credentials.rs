//! Credentials building blocks (docs/runtime.md "Credentials"): the file
//! store's checks, and that no value reaches an error, a `Debug`, tracing
//! or a file.

mod support;
use netgrant_runtime::secrecy::{ExposeSecret, SecretString};
use netgrant_runtime::{
    format_header_value, placeholder, substitute_placeholders, FileSecretStore, Masker,
    MemorySecretStore, SecretError, SecretFileError, SecretRef, SecretStore,
    MAX_SECRETS_FILE_BYTES,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use support::sentinel::{capture_tracing, Sentinel};

const S: Sentinel = Sentinel::DEFAULT;

fn write(dir: &Path, name: &str, text: &[u8], mode: u32) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

fn good_file() -> String {
    format!(
        "\"discord/bot\" = \"{}\"\ngithub = \"gh-{}\"\n",
        S.value(),
        S.value()
    )
}

fn r(s: &str) -> SecretRef {
    s.parse().unwrap()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn euid() -> u32 {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() }
}

#[test]
fn a_private_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.toml", good_file().as_bytes(), 0o600);
    let store = FileSecretStore::open(&p).unwrap();
    let refs: Vec<_> = store.refs().iter().map(|r| r.as_str()).collect();
    assert_eq!(refs, ["discord/bot", "github"]);
    let v = block_on(store.get(&r("discord/bot"))).unwrap();
    assert_eq!(v.expose_secret(), S.value());
    assert_eq!(
        block_on(store.get(&r("nope"))).unwrap_err(),
        SecretError::NotFound(r("nope"))
    );
    S.assert_not_in_debug("store", &store);
    S.assert_not_in_display("store", &store);
    S.assert_not_in_debug("value", &v);
    // 0400 is fine too (no write bit needed).
    let p = write(dir.path(), "ro.toml", good_file().as_bytes(), 0o400);
    assert!(FileSecretStore::open(&p).is_ok());
}

#[test]
fn open_files_and_non_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = good_file();
    for mode in [
        0o640, 0o604, 0o620, 0o610, 0o602, 0o601, 0o644, 0o660, 0o666,
    ] {
        let p = write(dir.path(), &format!("m{mode:o}"), text.as_bytes(), mode);
        let e = FileSecretStore::open(&p).unwrap_err();
        assert_eq!(e, SecretFileError::TooOpen { path: p, mode }, "{mode:o}");
        S.assert_not_in_error("too open", &e);
    }

    // A symlink to a good file is not followed.
    let good = write(dir.path(), "good", text.as_bytes(), 0o600);
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&good, &link).unwrap();
    let e = FileSecretStore::open(&link).unwrap_err();
    assert_eq!(e, SecretFileError::NotRegularFile { path: link });

    // A directory, a FIFO (opening it must not wait for a writer).
    let e = FileSecretStore::open(dir.path()).unwrap_err();
    assert_eq!(e.code(), "secrets_file_not_regular", "{e}");
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = FileSecretStore::open(&fifo).unwrap_err();
    assert_eq!(e.code(), "secrets_file_not_regular", "{e}");

    let e = FileSecretStore::open(dir.path().join("missing")).unwrap_err();
    assert_eq!(e.code(), "secrets_file_io", "{e}");
}

#[test]
fn a_file_of_another_user_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "s.toml", good_file().as_bytes(), 0o600);
    if euid() == 0 {
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
        let e = FileSecretStore::open(&p).unwrap_err();
        assert_eq!(
            e,
            SecretFileError::WrongOwner {
                path: p,
                owner: 65534,
                current: 0
            }
        );
    } else {
        // Not root: a root-owned world-readable file; the owner is checked
        // before the mode.
        let e = FileSecretStore::open("/etc/passwd").unwrap_err();
        assert_eq!(e.code(), "secrets_file_owner", "{e}");
    }
}

#[test]
fn oversized_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = b"a = \"x\"\n".to_vec();
    text.resize(MAX_SECRETS_FILE_BYTES as usize + 1, b'#');
    let p = write(dir.path(), "big", &text, 0o600);
    assert_eq!(
        FileSecretStore::open(&p).unwrap_err().code(),
        "secrets_file_too_large"
    );
}

#[test]
fn no_error_quotes_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let v = S.value();
    for (text, code) in [
        (format!("BAD = \"{v}\""), "secrets_file_invalid_key"),
        (format!("\"{v}\" = \"x\""), "secrets_file_invalid_key"),
        (format!("a.b = \"{v}\""), "secrets_file_invalid_key"),
        (format!("a = \"{v}\n"), "secrets_file_syntax"),
        (format!("a = \"{v}\\n\""), "secrets_file_invalid_value"),
        (format!("a = [\"{v}\"]"), "secrets_file_invalid_value"),
        (format!("a = \"{v}\"\na = \"{v}\""), "secrets_file_syntax"),
        (format!("a = \"{v}\" b"), "secrets_file_syntax"),
    ] {
        let p = write(dir.path(), "s.toml", text.as_bytes(), 0o600);
        let e = FileSecretStore::open(&p).unwrap_err();
        assert_eq!(e.code(), code, "{text:?}: {e}");
        S.assert_not_in_error(code, &e);
        S.assert_not_in_debug(code, &e);
    }
}

#[test]
fn injection_and_masking_keep_values_out_of_errors() {
    let token = SecretString::from(S.value());
    let bad = SecretString::from(format!("{}\r\n", S.value()));
    let e = format_header_value("Bot {secret}", &bad).unwrap_err();
    S.assert_not_in_error("header", &e);
    S.assert_not_in_debug("header", &e);
    let e = substitute_placeholders("{{credential:other}}", &[("a", &token)]).unwrap_err();
    S.assert_not_in_error("substitute", &e);

    let sent =
        substitute_placeholders("{\"token\":\"{{credential:a}}\"}", &[("a", &token)]).unwrap();
    assert!(S.found_in(sent.as_bytes()));
    // The peer echoes it: plain, JSON-escaped, percent-encoded.
    let slashed = format!("{}/\"x", S.value());
    let m = Masker::new([
        (token.expose_secret(), placeholder("a")),
        (slashed.as_str(), placeholder("b")),
    ])
    .unwrap();
    let echoed = format!("{} {:?} {}%2F%22x", sent.as_str(), slashed, S.value());
    let masked = m.mask_str(&echoed);
    S.assert_not_in_display("masked", &masked);
    assert_eq!(
        masked,
        "{\"token\":\"{{credential:a}}\"} \"{{credential:b}}\" {{credential:b}}"
    );
    S.assert_not_in_debug("masker", &m);
}

#[test]
fn memory_store_and_secret_string_are_redacted() {
    let store = MemorySecretStore::new().with(r("a/b"), SecretString::from(S.value()));
    S.assert_not_in_debug("memory store", &store);
    let ((), text) = S.assert_not_in_tracing(|| {
        let v = block_on(store.get(&r("a/b"))).unwrap();
        tracing::info!(value = ?v, store = ?store, "looked up");
    });
    assert!(text.contains("looked up"), "{text}");
}

#[test]
fn the_sentinel_checks_can_fail() {
    // Each check must catch a leak, or the tests above prove nothing.
    let leaks: Vec<Box<dyn FnOnce() + std::panic::UnwindSafe>> = vec![
        Box::new(|| S.assert_not_in_debug("x", &S.value())),
        Box::new(|| S.assert_not_in_display("x", &format!("v={}", S.value()))),
        Box::new(|| S.assert_not_in_debug("x", &format!("a\n{}", S.value()))),
        Box::new(|| {
            S.assert_not_in_tracing(|| tracing::debug!(v = S.value()));
        }),
        Box::new(|| {
            S.assert_not_in_tracing(|| {
                let _span = tracing::trace_span!("s", v = %S.value()).entered();
                tracing::trace!("inside");
            });
        }),
        Box::new(|| {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("f");
            std::fs::write(&p, format!("{{\"x\":\"{}\"}}", S.value())).unwrap();
            S.assert_not_in_file(&p);
        }),
    ];
    for (i, leak) in leaks.into_iter().enumerate() {
        assert!(
            std::panic::catch_unwind(leak).is_err(),
            "check {i} missed a leak"
        );
    }
    let (_, text) = capture_tracing(|| tracing::info!("clean"));
    assert!(S
        .assert_not_in_tracing(|| tracing::info!("clean"))
        .1
        .contains("clean"));
    assert!(text.contains("clean"));
}
