//! `netgrant request` end to end, against an HTTP peer on 127.0.0.1 only (a
//! small scripted HTTP/1.1 server in the test, plain and TLS with a local
//! CA). No test resolves a real name: every URL is `localhost` (dialed
//! without DNS), an IP literal, or a name given with `--resolve`.

mod common;
use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(20);

/// Every byte value, twice, plus invalid UTF-8: stdout must carry it as is.
fn binary_body() -> Vec<u8> {
    let mut v: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    v.extend_from_slice(b"\xff\xfe\x00\r\n\x1b[31m");
    v
}

/// One request as the server read it.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Vec<u8>,
}

/// An HTTP/1.1 server on `bind` answering by path:
/// `/v1/bin` → 200 with [`binary_body`], a `Set-Cookie` and an `X-Kept`;
/// `/v1/echo` → 200 echoing the body; `/v1/redirect` → 302 to `REDIRECT`;
/// `/v1/close` → closes without answering; `/v1/hang` → never answers and
/// counts the connection in `hung_up` when the client closes it; anything
/// else → 404.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    hung_up: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(bind: &str, tls: Option<tokio_rustls::TlsAcceptor>, redirect: &str) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(tokio::net::TcpListener::bind(bind)).unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let hung_up = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (count, log, redirect) = (accepted.clone(), seen.clone(), redirect.to_string());
        let hung = hung_up.clone();
        rt.spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let (tls, log, redirect) = (tls.clone(), log.clone(), redirect.clone());
                let hung = hung.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp, log, redirect, hung).await,
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(tcp).await {
                                serve(s, log, redirect, hung).await
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepted,
            hung_up,
            seen,
            _rt: rt,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    log: Arc<Mutex<Vec<Seen>>>,
    redirect: String,
    hung_up: Arc<AtomicUsize>,
) {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || s.read(&mut b).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if s.read_exact(&mut body).await.is_err() {
        return;
    }
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    log.lock().unwrap().push(Seen {
        head,
        body: body.clone(),
    });
    let (status, extra, payload): (&str, String, Vec<u8>) = match path.as_str() {
        "/v1/bin" => (
            "200 OK",
            "Content-Type: application/octet-stream\r\nSet-Cookie: session=s3cret\r\nX-Kept: yes\r\n"
                .into(),
            binary_body(),
        ),
        "/v1/echo" => ("200 OK", String::new(), body),
        // Echoes the credential it got, in a header and in the body.
        "/v1/whoami" => {
            let auth = seen_header(&log.lock().unwrap().last().unwrap().head, "authorization");
            ("200 OK", format!("X-Echo: {auth}\r\n"), auth.into_bytes())
        }
        "/v1/redirect" => ("302 Found", format!("Location: {redirect}\r\n"), b"moved".to_vec()),
        "/v1/close" => return,
        "/v1/hang" => {
            let mut buf = [0u8; 1024];
            while s.read(&mut buf).await.is_ok_and(|n| n > 0) {}
            hung_up.fetch_add(1, Ordering::SeqCst);
            return;
        }
        _ => ("404 Not Found", String::new(), b"nope".to_vec()),
    };
    let mut out = format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(&payload);
    let _ = s.write_all(&out).await;
    let _ = s.flush().await;
}

/// A header's value in a request head (empty when absent).
fn seen_header(head: &str, name: &str) -> String {
    head.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default()
}

/// A local CA and a TLS acceptor for `localhost`; returns the CA as PEM.
fn local_tls() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    (tokio_rustls::TlsAcceptor::from(Arc::new(cfg)), ca.pem())
}

/// A manifest + grant requesting and granting `[[host_api.request]]` for
/// each URL with GET and POST and the header `X-Trace`, plus `extra` lines.
struct Policy {
    dir: tempfile::TempDir,
}

impl Policy {
    fn allow(urls: &[&str], extra: &str) -> Policy {
        Policy::allow_with(urls, extra, extra)
    }

    /// Like `allow`, with different extra lines for the manifest and the grant.
    fn allow_with(urls: &[&str], manifest_extra: &str, grant_extra: &str) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let mut m = String::from("[plugin]\nname = \"http\"\nversion = \"1.0.0\"\n");
        let mut g = String::from("plugin = \"http\"\n");
        for u in urls {
            let entry = |extra: &str| {
                format!(
                    "\n[[host_api.request]]\nurl = \"{u}\"\nmethods = [\"GET\", \"POST\"]\nheaders = [\"X-Trace\"]\n{extra}\n"
                )
            };
            m.push_str(&entry(manifest_extra));
            m.push_str("reason = \"test peer\"\n");
            g.push_str(&entry(grant_extra));
        }
        std::fs::write(dir.path().join("plugin.toml"), m).unwrap();
        std::fs::write(dir.path().join("grant.toml"), g).unwrap();
        Policy { dir }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--manifest".into(),
            path_str(&self.dir.path().join("plugin.toml")),
            "--grant".into(),
            path_str(&self.dir.path().join("grant.toml")),
        ]
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs `netgrant request ARGS` with `stdin`; (exit code, raw stdout, stderr).
fn request(args: &[String], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let out = netgrant()
        .arg("request")
        .args(args)
        .write_stdin(stdin.to_vec())
        .timeout(WAIT)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn with(policy: &Policy, extra: &[&str]) -> Vec<String> {
    let mut a = policy.args();
    a.extend(strs(extra));
    a
}

#[test]
fn get_prints_status_and_filtered_headers_on_stderr_and_the_body_bytes_on_stdout() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let (code, out, err) = request(
        &with(&policy, &["-H", "X-Trace: t1", &format!("{base}bin")]),
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, binary_body(), "stdout is the body, byte for byte");
    assert!(err.starts_with("HTTP/1.1 200 OK\n"), "{err}");
    assert!(err.contains("x-kept: yes\n"), "{err}");
    assert!(
        err.contains("content-type: application/octet-stream\n"),
        "{err}"
    );
    for gone in ["set-cookie", "s3cret", "connection:"] {
        assert!(!err.to_lowercase().contains(gone), "{gone} shown:\n{err}");
    }
    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    let head = seen[0].head.to_lowercase();
    assert!(head.starts_with("get /v1/bin http/1.1\r\n"), "{head}");
    assert!(head.contains(&format!("host: localhost:{}\r\n", server.port())));
    assert!(head.contains("x-trace: t1\r\n"), "{head}");
}

#[test]
fn data_from_a_file_or_stdin_is_sent_as_is() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("body.bin");
    std::fs::write(&file, binary_body()).unwrap();
    let url = format!("{base}echo");
    let data = format!("@{}", path_str(&file));
    let (code, out, err) = request(&with(&policy, &["-X", "POST", "--data", &data, &url]), b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, binary_body());
    let (code, out, err) = request(
        &with(&policy, &["--method", "POST", "--data", "-", &url]),
        b"from stdin\x00\xff",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, b"from stdin\x00\xff");
    let bodies: Vec<Vec<u8>> = server.seen().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies, [binary_body(), b"from stdin\x00\xff".to_vec()]);
}

#[test]
fn any_http_status_exits_0_and_a_redirect_is_not_followed() {
    // The redirect target would count a connection if it were followed.
    let elsewhere = Server::start("127.0.0.2:0", None, "");
    let target = format!("http://127.0.0.2:{}/v1/bin", elsewhere.port());
    let server = Server::start("127.0.0.1:0", None, &target);
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let (code, out, err) = request(&with(&policy, &[&format!("{base}missing")]), b"");
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("HTTP/1.1 404 Not Found\n"), "{err}");
    assert_eq!(out, b"nope");
    let (code, out, err) = request(&with(&policy, &[&format!("{base}redirect")]), b"");
    assert_eq!(code, 0, "{err}");
    assert!(err.starts_with("HTTP/1.1 302 Found\n"), "{err}");
    assert!(err.contains(&format!("location: {target}\n")), "{err}");
    assert_eq!(out, b"moved");
    assert_eq!(elsewhere.accepted(), 0, "the redirect was followed");
}

#[test]
fn denied_requests_exit_1_with_the_code_and_never_reach_the_server() {
    let server = Server::start("127.0.0.1:0", None, "");
    let p = server.port();
    let base = format!("http://localhost:{p}/v1/");
    let named = format!("http://api.local.test:{p}/v1/");
    let policy = Policy::allow(&[&base, &named], "");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            strs(&[&format!("http://localhost:{p}/admin?token=s3cret")]),
            "deny not_requested",
        ),
        (
            strs(&["-X", "DELETE", &format!("{base}echo")]),
            "deny method_not_allowed",
        ),
        (
            strs(&["-H", "Authorization: Bearer s3cret", &format!("{base}bin")]),
            "deny forbidden_header",
        ),
        (
            strs(&["-H", "Upgrade: websocket", &format!("{base}bin")]),
            "deny wrong_capability",
        ),
        (
            strs(&[&format!("ws://localhost:{p}/v1/bin")]),
            "deny wrong_capability",
        ),
        // A public and a loopback answer: one uncovered answer denies.
        (
            strs(&[
                "--resolve",
                "api.local.test=93.184.215.14",
                "--resolve",
                "api.local.test=127.0.0.1",
                &format!("{named}bin"),
            ]),
            "deny non_public_address",
        ),
        (
            strs(&["--resolve", "other.test=127.0.0.1", &format!("{named}bin")]),
            "deny resolution_failed",
        ),
    ];
    for (extra, want) in cases {
        let mut args = policy.args();
        args.extend(extra.clone());
        let (code, out, err) = request(&args, b"");
        assert_eq!(code, 1, "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: want {want:?} in:\n{err}");
        assert!(out.is_empty(), "{extra:?}");
        assert!(!err.contains("s3cret"), "{extra:?}: secret leaked:\n{err}");
    }
    assert_eq!(server.accepted(), 0, "a denied request opened a connection");
}

#[test]
fn failures_exit_1_with_the_code() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let (code, out, err) = request(&with(&policy, &[&format!("{base}close")]), b"");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error http_failed"), "{err}");
    assert!(out.is_empty());
    // A body over the 1 MiB request bound is refused before connecting.
    let accepted = server.accepted();
    let big = vec![b'x'; 1024 * 1024 + 1];
    let (code, _, err) = request(
        &with(
            &policy,
            &["-X", "POST", "--data", "-", &format!("{base}echo")],
        ),
        &big,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error message_too_large"), "{err}");
    assert_eq!(server.accepted(), accepted);
}

#[test]
fn bad_input_exits_2_without_connecting() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let url = format!("{base}bin");
    let policy = Policy::allow(&[&base], "");
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    for extra in [
        strs(&["--data", "literal body"]),
        strs(&["--data", "@"]),
        strs(&["--data", "@/nonexistent/body"]),
        strs(&["--header", "no colon"]),
        strs(&["--resolve", "no-equals-sign"]),
        strs(&["--ca", "/nonexistent/ca.pem"]),
        strs(&["--ca", &path_str(&not_pem)]),
    ] {
        let mut args = policy.args();
        args.extend(extra.clone());
        args.push(url.clone());
        let (code, _, err) = request(&args, b"");
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(
            err.contains("error") || err.contains('×'),
            "{extra:?}: {err}"
        );
    }
    let (code, _, _) = request(&strs(&[&url]), b"");
    assert_eq!(code, 2, "no policy");
    assert_eq!(server.accepted(), 0);
}

#[test]
fn https_with_a_local_ca() {
    let (acceptor, ca_pem) = local_tls();
    let server = Server::start("127.0.0.1:0", Some(acceptor), "");
    let base = format!("https://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let dir = tempfile::tempdir().unwrap();
    let ca: PathBuf = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let url = format!("{base}bin");
    let (code, out, err) = request(&with(&policy, &["--ca", &path_str(&ca), &url]), b"");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, binary_body());
    // Without --ca the bundled roots do not trust the local CA.
    let (code, out, err) = request(&with(&policy, &[&url]), b"");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("error tls_failed"), "{err}");
    assert!(out.is_empty());
    assert_eq!(
        server.seen().len(),
        1,
        "no request crossed an untrusted session"
    );
}

#[test]
fn ctrl_c_cancels_the_request_and_closes_its_connection() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("netgrant"))
        .arg("request")
        .args(with(&policy, &[&format!("{base}hang")]))
        .current_dir(root())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while server.seen().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the request never arrived"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("netgrant request did not exit after SIGINT");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("error interrupted"), "{err}");
    assert!(out.stdout.is_empty());
    let deadline = std::time::Instant::now() + WAIT;
    while server.hung_up.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the connection stayed open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `request --audit` records each call; replaying the file against the same
/// policy gives the recorded decisions (docs/spec.md §11).
#[test]
fn audit_records_replay_to_the_same_decisions() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow(&[&base], "");
    let audit = policy.dir.path().join("audit.jsonl");
    let audit_s = path_str(&audit);
    // The third URL carries userinfo: its record holds the URL without it,
    // and replay must still reach `credentials_in_url` (decision 198).
    let with_userinfo = base.replacen("://", "://alice:pw-s3cret@", 1);
    for (args, url, want) in [
        (vec!["-H", "X-Trace: s3cret", "--audit", &audit_s], &base, 0),
        (vec!["-X", "DELETE", "--audit", &audit_s], &base, 1),
        (vec!["--audit", &audit_s], &with_userinfo, 1),
    ] {
        let mut a = with(&policy, &args);
        a.push(format!("{url}bin"));
        let (code, _, err) = request(&a, b"");
        assert_eq!(code, want, "{err}");
    }
    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in ["s3cret", "alice"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shape: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            let what = r
                .get("code")
                .or(r.get("outcome"))
                .and_then(|v| v.as_str())
                .unwrap();
            (r["record"].as_str().unwrap(), what)
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("decision", "allowed"),
            ("finished", "closed"),
            ("decision", "method_not_allowed"),
            ("decision", "credentials_in_url")
        ],
        "{text}"
    );
    assert_eq!(records[1]["status"], 200);
    assert_eq!(records[1]["bytes_in"], binary_body().len() as u64);

    let mut replay = strs(&["replay", "--format", "json", "--fail-on-change"]);
    replay.extend(policy.args());
    replay.push(audit_s.clone());
    let (code, out, err) = run(netgrant().args(&replay));
    assert_eq!(code, 0, "{err}\n{out}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["recorded"]["lines"], 3, "{summary}");
    assert_eq!(summary["recorded"]["changed"], 0, "{summary}");
}

/// A secrets file with `mode`, holding `test/token`.
fn secrets_file(dir: &Path, value: &str, mode: u32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("secrets.toml");
    std::fs::write(&path, format!("\"test/token\" = \"{value}\"\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

const SENTINEL: &str = "SENTINEL-cli-4f2b9d-token";

/// The policy's flags, asking for `token` from `secrets`, then `url`.
fn token_args(policy: &Policy, secrets: &Path, url: &str) -> Vec<String> {
    with(
        policy,
        &[
            "--credential",
            "token",
            "--secrets",
            &path_str(secrets),
            url,
        ],
    )
}

#[test]
fn a_credential_reaches_the_server_and_only_its_placeholder_reaches_the_output() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow_with(
        &[&base],
        "credentials = [{ name = \"token\", header = \"Authorization\", format = \"Bearer {secret}\" }]",
        "credentials = { token = \"test/token\" }",
    );
    let secrets = secrets_file(policy.dir.path(), SENTINEL, 0o600);
    let audit = policy.dir.path().join("audit.jsonl");
    let (code, out, err) = request(
        &with(
            &policy,
            &[
                "--credential",
                "token",
                "--secrets",
                &path_str(&secrets),
                "--audit",
                &path_str(&audit),
                &format!("{base}whoami"),
            ],
        ),
        b"",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, b"Bearer {{credential:token}}");
    assert!(
        err.contains("x-echo: Bearer {{credential:token}}\n"),
        "{err}"
    );
    let seen = server.seen();
    assert_eq!(
        seen_header(&seen[0].head, "authorization"),
        format!("Bearer {SENTINEL}"),
        "the server got the value"
    );
    let audit = std::fs::read_to_string(&audit).unwrap();
    for (what, text) in [
        ("stdout", String::from_utf8_lossy(&out).into_owned()),
        ("stderr", err.clone()),
        ("audit", audit.clone()),
    ] {
        assert!(
            !text.contains(SENTINEL),
            "the value leaked into {what}: {text}"
        );
    }
    assert!(audit.contains(r#""credentials":["token"]"#), "{audit}");

    // Without --credential nothing is injected; without --secrets the
    // request fails before connecting (exit 1).
    let (code, out, err) = request(&with(&policy, &[&format!("{base}whoami")]), b"");
    assert_eq!((code, out.as_slice()), (0, b"".as_slice()), "{err}");
    let before = server.accepted();
    let (code, _, err) = request(
        &with(
            &policy,
            &["--credential", "token", &format!("{base}whoami")],
        ),
        b"",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("secret_store_failed"), "{err}");
    assert_eq!(server.accepted(), before, "connected without a value");
}

#[test]
fn a_secrets_file_others_can_read_or_a_missing_one_is_invalid_input() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow_with(
        &[&base],
        "credentials = [{ name = \"token\", header = \"Authorization\" }]",
        "credentials = { token = \"test/token\" }",
    );
    for (mode, code) in [
        (0o644, "secrets_file_permissions"),
        (0o640, "secrets_file_permissions"),
    ] {
        let secrets = secrets_file(policy.dir.path(), SENTINEL, mode);
        let (exit, _, err) = request(
            &token_args(&policy, &secrets, &format!("{base}whoami")),
            b"",
        );
        assert_eq!(exit, 2, "{mode:o}: {err}");
        assert!(err.contains(code), "{mode:o}: {err}");
        assert!(!err.contains(SENTINEL), "{err}");
    }
    let (exit, _, err) = request(
        &with(
            &policy,
            &[
                "--secrets",
                &path_str(&policy.dir.path().join("nope.toml")),
                &format!("{base}whoami"),
            ],
        ),
        b"",
    );
    assert_eq!(exit, 2, "{err}");
    assert_eq!(server.accepted(), 0);
}

#[test]
fn a_credential_the_grant_does_not_bind_is_denied_before_connecting() {
    let server = Server::start("127.0.0.1:0", None, "");
    let base = format!("http://localhost:{}/v1/", server.port());
    let policy = Policy::allow_with(
        &[&base],
        "credentials = [{ name = \"token\", header = \"Authorization\" }]",
        "",
    );
    let secrets = secrets_file(policy.dir.path(), SENTINEL, 0o600);
    let (code, _, err) = request(
        &token_args(&policy, &secrets, &format!("{base}whoami")),
        b"",
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("credential_not_granted"), "{err}");
    assert_eq!(server.accepted(), 0);
}
