//! `netgrant connect` end to end, against WebSocket peers on 127.0.0.1 only:
//! an in-test tokio-tungstenite server (plain and TLS with a local CA) and a
//! Python `websockets` server (interop). No test resolves a real name: every
//! URL is `localhost` (dialed without DNS), an IP literal, or a name given
//! with `--resolve`.

mod common;
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const WAIT: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- servers

/// A WebSocket server on 127.0.0.1 that counts accepted TCP connections.
/// Text `close CODE REASON` makes it close with that code; text `binary N`
/// makes it send N bytes 0, 1, 2, …; anything else is echoed.
struct Server {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Server {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        rt.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                count.fetch_add(1, Ordering::SeqCst);
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(tcp).await,
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve(stream).await
                            }
                        }
                    }
                });
            }
        });
        Server {
            addr,
            accepted,
            _rt: rt,
        }
    }

    fn port(&self) -> u16 {
        self.addr.port()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

async fn serve<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(Ok(m)) = ws.next().await {
        let reply = match &m {
            Message::Text(t) => {
                let t = t.as_str();
                if let Some(rest) = t.strip_prefix("close ") {
                    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
                    let frame = CloseFrame {
                        code: CloseCode::from(code.parse::<u16>().unwrap()),
                        reason: reason.to_string().into(),
                    };
                    let _ = ws.close(Some(frame)).await;
                    // Drain until the client's close reply ends the stream.
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
                if let Some(n) = t.strip_prefix("binary ") {
                    let n: usize = n.parse().unwrap();
                    Message::binary((0..n).map(|i| i as u8).collect::<Vec<u8>>())
                } else {
                    m.clone()
                }
            }
            Message::Binary(_) => m.clone(),
            Message::Close(_) => return,
            _ => continue,
        };
        if ws.send(reply).await.is_err() {
            return;
        }
    }
}

/// A local CA, and a TLS acceptor for `localhost` signed by it. Returns the
/// acceptor and the CA certificate as PEM.
fn local_tls() -> (tokio_rustls::TlsAcceptor, String) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
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

// ---------------------------------------------------------------- policies

/// A manifest + grant in a temp dir. `requested` and `granted` are websocket
/// target URLs.
struct Policy {
    dir: tempfile::TempDir,
}

impl Policy {
    fn new(requested: &[&str], granted: &[&str]) -> Policy {
        let dir = tempfile::tempdir().unwrap();
        let mut m = String::from("[plugin]\nname = \"echo\"\nversion = \"1.0.0\"\n");
        for u in requested {
            m.push_str(&format!(
                "\n[[host_api.websocket]]\nurl = \"{u}\"\nreason = \"test peer\"\n"
            ));
        }
        let mut g = String::from("plugin = \"echo\"\n");
        for u in granted {
            g.push_str(&format!("\n[[host_api.websocket]]\nurl = \"{u}\"\n"));
        }
        std::fs::write(dir.path().join("plugin.toml"), m).unwrap();
        std::fs::write(dir.path().join("grant.toml"), g).unwrap();
        Policy { dir }
    }

    /// Requests and grants exactly `url`.
    fn allow(url: &str) -> Policy {
        Policy::new(&[url], &[url])
    }

    fn manifest(&self) -> PathBuf {
        self.dir.path().join("plugin.toml")
    }

    fn grant(&self) -> PathBuf {
        self.dir.path().join("grant.toml")
    }

    /// `--manifest M --grant G`.
    fn args(&self) -> Vec<String> {
        vec![
            "--manifest".into(),
            path_str(&self.manifest()),
            "--grant".into(),
            path_str(&self.grant()),
        ]
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

// ---------------------------------------------------------------- sessions

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("netgrant")
}

/// A running `netgrant connect` with piped stdio.
struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    err_text: String,
}

impl Session {
    fn start(args: &[String]) -> Session {
        let mut child = Command::new(bin())
            .arg("connect")
            .args(args)
            .current_dir(root())
            .env("NO_COLOR", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = lines_of(child.stdout.take().unwrap());
        let stderr = lines_of(child.stderr.take().unwrap());
        Session {
            child,
            stdin,
            stdout,
            stderr,
            err_text: String::new(),
        }
    }

    fn send(&mut self, line: &str) {
        let s = self.stdin.as_mut().expect("stdin open");
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        s.flush().unwrap();
    }

    /// The next stdout line (panics after WAIT, with stderr so far).
    fn next_line(&mut self) -> String {
        match self.stdout.recv_timeout(WAIT) {
            Ok(l) => l,
            Err(_) => panic!("no stdout line within {WAIT:?}; stderr:\n{}", self.stderr()),
        }
    }

    /// Waits for a stderr line containing `needle`.
    fn wait_stderr(&mut self, needle: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.err_text.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(l) => {
                    self.err_text.push_str(&l);
                    self.err_text.push('\n');
                }
                Err(_) => panic!("stderr never said {needle:?}:\n{}", self.err_text),
            }
        }
    }

    /// Everything on stderr so far.
    fn stderr(&mut self) -> String {
        while let Ok(l) = self.stderr.try_recv() {
            self.err_text.push_str(&l);
            self.err_text.push('\n');
        }
        self.err_text.clone()
    }

    /// Closes stdin (EOF).
    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the exit code (kills the process after WAIT and panics).
    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader threads drain what is left.
                std::thread::sleep(Duration::from_millis(50));
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("netgrant connect did not exit; stderr:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stdout lines not yet read.
    fn rest_of_stdout(&mut self) -> Vec<String> {
        self.stdout.try_iter().collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(r: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { return };
            if tx.send(l).is_err() {
                return;
            }
        }
    });
    rx
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Runs `netgrant connect ARGS` with `stdin` as its whole input.
fn run_connect(args: &[String], stdin: &str) -> (i32, String, String) {
    run(netgrant()
        .arg("connect")
        .args(args)
        .write_stdin(stdin)
        .timeout(WAIT))
}

// ---------------------------------------------------------------- tests

#[test]
fn echoes_stdin_lines_and_exits_0_at_eof() {
    let server = Server::start(None);
    let url = format!("ws://localhost:{}/", server.port());
    let policy = Policy::allow(&url);
    let mut args = policy.args();
    args.push(url.clone());
    let mut s = Session::start(&args);
    s.wait_stderr(&format!("connected {url} via 127.0.0.1:{}", server.port()));
    s.send("hello");
    assert_eq!(s.next_line(), "hello");
    s.send("second line, with ünïcode");
    assert_eq!(s.next_line(), "second line, with ünïcode");
    // Terminal escapes from the peer are shown as text, never interpreted.
    s.send("red \u{1b}[31mtext\u{202e}");
    assert_eq!(s.next_line(), "red \\u{1b}[31mtext\\u{202e}");
    // Binary messages print as a summary line, long ones truncated.
    s.send("binary 3");
    assert_eq!(s.next_line(), "<binary 3 bytes> AAEC");
    s.send("binary 100");
    let l = s.next_line();
    assert!(l.starts_with("<binary 100 bytes> AAECAwQF"), "{l}");
    assert!(l.ends_with('…'), "{l}");
    s.close_stdin();
    assert_eq!(s.wait(), 0, "stderr:\n{}", s.stderr());
    assert!(s.rest_of_stdout().is_empty());
    assert_eq!(server.accepted(), 1);
}

#[test]
fn piped_input_gets_its_replies_before_closing() {
    // All of stdin at once, then EOF: --linger keeps reading the replies.
    let server = Server::start(None);
    let url = format!("ws://localhost:{}/chat", server.port());
    let policy = Policy::allow(&format!("ws://localhost:{}/", server.port()));
    let mut args = policy.args();
    args.extend(strs(&["--linger", "3", &url]));
    let (code, out, err) = run_connect(&args, "one\ntwo\r\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "one\ntwo\n", "{err}");
}

#[test]
fn unsendable_stdin_lines_are_reported_and_skipped() {
    // Not UTF-8, over the 1 MiB message bound, or with a placeholder of a
    // credential the connection does not have: a warning, nothing sent, the
    // session goes on.
    let server = Server::start(None);
    let url = format!("ws://localhost:{}/", server.port());
    let policy = Policy::allow(&url);
    let mut args = policy.args();
    args.extend(strs(&["--linger", "3", &url]));
    let mut input = b"first\n\xff\xfe bytes\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 1024 * 1024 + 10));
    input.extend(b"\nsecret {{credential:nope}}\nlast\n");
    let (code, out, err) = run(netgrant()
        .arg("connect")
        .args(&args)
        .write_stdin(input)
        .timeout(WAIT));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "first\nlast\n", "{err}");
    assert!(err.contains("stdin line 2 is not valid UTF-8"), "{err}");
    assert!(err.contains("message_too_large: stdin line 3"), "{err}");
    assert!(
        err.contains("credential_not_granted: credential `nope` is not bound"),
        "{err}"
    );
}

#[test]
fn compiled_policy_and_resolve_table_work_too() {
    // --policy IR.json, and a name answered by --resolve with a loopback
    // address that the target's `networks` covers.
    let server = Server::start(None);
    let port = server.port();
    let url = format!("ws://echo.local.test:{port}/");
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("plugin.toml");
    let g = dir.path().join("grant.toml");
    let ir = dir.path().join("policy.json");
    std::fs::write(
        &m,
        format!("[plugin]\nname = \"echo\"\nversion = \"1.0.0\"\n\n[[host_api.websocket]]\nurl = \"{url}\"\nnetworks = [\"127.0.0.1/32\"]\n"),
    )
    .unwrap();
    std::fs::write(
        &g,
        format!("plugin = \"echo\"\n\n[[host_api.websocket]]\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let (code, _, err) = run(netgrant().args([
        "compile",
        &path_str(&m),
        "--grant",
        &path_str(&g),
        "-o",
        &path_str(&ir),
    ]));
    assert_eq!(code, 0, "{err}");
    let args = strs(&[
        "--policy",
        &path_str(&ir),
        "--resolve",
        "echo.local.test=127.0.0.1",
        "--linger",
        "3",
        &url,
    ]);
    let (code, out, err) = run_connect(&args, "via ir\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "via ir\n");
    assert!(
        err.contains(&format!("connected {url} via 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn denied_open_exits_1_with_the_code_and_never_reaches_the_server() {
    let server = Server::start(None);
    let port = server.port();
    // Requested: the whole server; granted: only /echo/.
    let policy = Policy::new(
        &[
            &format!("ws://localhost:{port}/"),
            &format!("ws://named.local.test:{port}/"),
        ],
        &[
            &format!("ws://localhost:{port}/echo/"),
            &format!("ws://named.local.test:{port}/"),
        ],
    );
    let cases: Vec<(String, Vec<String>, &str)> = vec![
        (
            format!("ws://localhost:{port}/admin"),
            vec![],
            "deny not_granted",
        ),
        // An IP literal never matches a name target, even the same socket.
        (
            format!("ws://127.0.0.1:{port}/echo/?token=s3cret"),
            vec![],
            "deny not_requested",
        ),
        // A domain target does not cover a loopback answer.
        (
            format!("ws://named.local.test:{port}/"),
            strs(&["--resolve", "named.local.test=127.0.0.1"]),
            "deny non_public_address",
        ),
        // Repeated flags merge: the public answer of the second flag does
        // not hide the loopback answer of the first (docs/spec.md §5).
        (
            format!("ws://named.local.test:{port}/"),
            strs(&[
                "--resolve",
                "named.local.test=127.0.0.1",
                "--resolve",
                "named.local.test=93.184.215.14",
            ]),
            "deny non_public_address",
        ),
        // --resolve given, name not in it: it does not resolve.
        (
            format!("ws://named.local.test:{port}/"),
            strs(&["--resolve", "other.local.test=127.0.0.1"]),
            "deny resolution_failed",
        ),
        (
            format!("wss://localhost:{port}/echo/"),
            vec![],
            "deny not_requested",
        ),
        ("not a url".to_string(), vec![], "deny invalid_url"),
    ];
    for (url, extra, want) in cases {
        let mut args = policy.args();
        args.extend(extra);
        args.push(url.clone());
        let (code, out, err) = run_connect(&args, "never sent\n");
        assert_eq!(code, 1, "{url}: {err}");
        assert!(err.contains(want), "{url}: want {want:?} in:\n{err}");
        assert!(out.is_empty(), "{url}: {out}");
        assert!(!err.contains("s3cret"), "{url}: secret leaked:\n{err}");
    }
    assert_eq!(
        server.accepted(),
        0,
        "a denied open must not open a TCP connection"
    );
}

#[test]
fn bad_input_exits_2_without_connecting() {
    let server = Server::start(None);
    let url = format!("ws://localhost:{}/", server.port());
    let policy = Policy::allow(&url);
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("ca.pem");
    std::fs::write(&not_pem, "not a certificate\n").unwrap();
    let bad_toml = dir.path().join("plugin.toml");
    std::fs::write(&bad_toml, "[plugin]\nname = \"x\"\nversion = 1\n").unwrap();
    let cases: Vec<Vec<String>> = vec![
        strs(&["--resolve", "no-equals-sign"]),
        strs(&["--resolve", "localhost=not-an-ip"]),
        strs(&["--header", "no colon"]),
        strs(&["--ca", "/nonexistent/ca.pem"]),
        strs(&["--ca", &path_str(&not_pem)]),
        strs(&["--linger", "-1"]),
    ];
    for extra in cases {
        let mut args = policy.args();
        args.extend(extra.clone());
        args.push(url.clone());
        let (code, _, err) = run_connect(&args, "x\n");
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(
            err.contains("error") || err.contains('×'),
            "{extra:?}: {err}"
        );
    }
    // An invalid manifest is fatal; so is a missing policy.
    let (code, _, err) = run_connect(&strs(&["--manifest", &path_str(&bad_toml), &url]), "");
    assert_eq!(code, 2, "{err}");
    let (code, _, _) = run_connect(&strs(&[&url]), "");
    assert_eq!(code, 2);
    assert_eq!(server.accepted(), 0);
}

#[test]
fn peer_close_reports_code_and_reason() {
    let server = Server::start(None);
    let url = format!("ws://localhost:{}/", server.port());
    let policy = Policy::allow(&url);
    for (cmd, want, code) in [
        ("close 1000 bye", "closed 1000 bye", 0),
        ("close 1001 going away", "closed 1001 going away", 0),
        ("close 4001 gone\u{1b}[2J", "closed 4001 gone\\u{1b}[2J", 1),
    ] {
        let mut args = policy.args();
        args.push(url.clone());
        let mut s = Session::start(&args);
        s.send("ping");
        assert_eq!(s.next_line(), "ping");
        s.send(cmd);
        s.wait_stderr(want);
        assert_eq!(s.wait(), code, "{cmd}: {}", s.stderr());
    }
}

#[test]
fn ctrl_c_closes_cleanly_with_exit_0() {
    let server = Server::start(None);
    let url = format!("ws://localhost:{}/", server.port());
    let policy = Policy::allow(&url);
    let mut args = policy.args();
    args.push(url);
    let mut s = Session::start(&args);
    s.send("before");
    assert_eq!(s.next_line(), "before");
    let st = Command::new("kill")
        .args(["-INT", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    // stdin is still open: only the signal ends the session.
    assert_eq!(s.wait(), 0, "{}", s.stderr());
}

#[test]
fn wss_with_a_local_ca() {
    let (acceptor, ca_pem) = local_tls();
    let server = Server::start(Some(acceptor));
    let url = format!("wss://localhost:{}/", server.port());
    let policy = Policy::allow(&url);
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();

    let mut args = policy.args();
    args.extend(strs(&["--ca", &path_str(&ca), "--linger", "3", &url]));
    let (code, out, err) = run_connect(&args, "over tls\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "over tls\n");

    // The bundled roots do not trust the local CA, and there is no way to
    // skip verification.
    let mut args = policy.args();
    args.push(url);
    let (code, out, err) = run_connect(&args, "never\n");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("tls_failed"), "{err}");
    assert!(out.is_empty());
}

// ---------------------------------------------------------------- Python interop

/// A Python `websockets` echo server (cli/tests/data/py_echo_server.py),
/// stopped when dropped (its stdin closes).
struct PyServer {
    child: Child,
    port: u16,
}

impl PyServer {
    fn start() -> PyServer {
        PyServer::start_logging(None)
    }

    /// With `log`, the peer writes what it receives there.
    fn start_logging(log: Option<&Path>) -> PyServer {
        let script = root().join("cli/tests/data/py_echo_server.py");
        let mut cmd = python_with_websockets();
        cmd.arg(&script).arg("0").arg("60");
        if let Some(log) = log {
            cmd.arg(log);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = lines_of(child.stdout.take().unwrap());
        let port = match out.recv_timeout(WAIT) {
            Ok(l) => l.trim().parse().expect("the server prints its port"),
            Err(_) => {
                let _ = child.kill();
                panic!("the Python server did not print its port");
            }
        };
        PyServer { child, port }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn interop_with_python_websockets() {
    let server = PyServer::start();
    let url = format!("ws://localhost:{}/", server.port);
    let policy = Policy::allow(&url);
    let mut args = policy.args();
    args.push(url.clone());
    let mut s = Session::start(&args);
    s.send("hello python");
    assert_eq!(s.next_line(), "hello python");
    s.send("ünïcode ✓");
    assert_eq!(s.next_line(), "ünïcode ✓");
    s.close_stdin();
    assert_eq!(s.wait(), 0, "{}", s.stderr());

    // Piped input too.
    let mut args = policy.args();
    args.extend(strs(&["--linger", "3", &url]));
    let (code, out, err) = run_connect(&args, "a\nb\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "a\nb\n");
}

/// Credentials through the Python peer: the handshake header and the
/// substituted message reach it with the value; the plugin side (stdout,
/// stderr, the audit file) shows only placeholders (docs/spec.md §9.3).
#[test]
fn credentials_reach_the_python_peer_and_only_placeholders_reach_the_output() {
    use std::os::unix::fs::PermissionsExt;
    const SENTINEL: &str = "SENTINEL-py-8e1d0c-token";
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("peer.log");
    let server = PyServer::start_logging(Some(&log));
    let url = format!("ws://localhost:{}/", server.port);
    let manifest = format!(
        "[plugin]\nname = \"echo\"\nversion = \"1.0.0\"\n\n[[host_api.websocket]]\nurl = \"{url}\"\nreason = \"test peer\"\ncredentials = [{{ name = \"hs\", header = \"X-Gateway-Auth\", format = \"Bot {{secret}}\" }}, {{ name = \"gw\", message = true }}]\n"
    );
    let grant = format!(
        "plugin = \"echo\"\n\n[[host_api.websocket]]\nurl = \"{url}\"\ncredentials = {{ hs = \"test/token\", gw = \"test/token\" }}\n"
    );
    std::fs::write(dir.path().join("plugin.toml"), manifest).unwrap();
    std::fs::write(dir.path().join("grant.toml"), grant).unwrap();
    let secrets = dir.path().join("secrets.toml");
    std::fs::write(&secrets, format!("\"test/token\" = \"{SENTINEL}\"\n")).unwrap();
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o600)).unwrap();
    let audit = dir.path().join("audit.jsonl");
    let p = |f: &str| path_str(&dir.path().join(f));
    let args = strs(&[
        "--manifest",
        &p("plugin.toml"),
        "--grant",
        &p("grant.toml"),
        "--credential",
        "hs",
        "--credential",
        "gw",
        "--secrets",
        &path_str(&secrets),
        "--audit",
        &path_str(&audit),
        "--linger",
        "3",
        &url,
    ]);
    let (code, out, err) = run_connect(&args, "IDENTIFY {{credential:gw}}\nplain\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "IDENTIFY {{credential:gw}}\nplain\n");
    let heard = std::fs::read_to_string(&log).unwrap();
    assert!(
        heard.contains(&format!("header x-gateway-auth: Bot {SENTINEL}\n")),
        "{heard}"
    );
    assert!(
        heard.contains(&format!("message IDENTIFY {SENTINEL}\n")),
        "{heard}"
    );
    let audit = std::fs::read_to_string(&audit).unwrap();
    for (what, text) in [("stdout", &out), ("stderr", &err), ("audit", &audit)] {
        assert!(
            !text.contains(SENTINEL),
            "the value leaked into {what}: {text}"
        );
    }
}

/// `connect --audit` writes one decision record per open (and a finished
/// record per connection); replaying the file against the same policy gives
/// the recorded decision on every line, and against a narrower policy says
/// which ones change (docs/spec.md §11).
#[test]
fn audit_records_replay_to_the_same_decisions() {
    let server = Server::start(None);
    let port = server.port();
    let requested = [
        format!("ws://localhost:{port}/"),
        format!("ws://named.local.test:{port}/"),
    ];
    let granted = [
        format!("ws://localhost:{port}/echo/"),
        format!("ws://named.local.test:{port}/"),
    ];
    let policy = Policy::new(
        &requested.iter().map(String::as_str).collect::<Vec<_>>(),
        &granted.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let audit = policy.dir.path().join("audit.jsonl");
    let cases: Vec<(String, Vec<String>, i32)> = vec![
        (
            format!("ws://localhost:{port}/echo/?token=s3cret"),
            vec![],
            0,
        ),
        (format!("ws://localhost:{port}/admin"), vec![], 1),
        (format!("ws://127.0.0.1:{port}/echo/"), vec![], 1),
        (
            format!("ws://named.local.test:{port}/"),
            strs(&["--resolve", "named.local.test=93.184.215.14,127.0.0.1"]),
            1,
        ),
        (
            format!("ws://named.local.test:{port}/"),
            strs(&["--resolve", "other.local.test=127.0.0.1"]),
            1,
        ),
        ("not a url".to_string(), vec![], 1),
    ];
    for (url, extra, want) in &cases {
        let mut args = policy.args();
        args.extend(extra.iter().cloned());
        args.extend(["--audit".to_string(), path_str(&audit), url.clone()]);
        let (code, _, err) = run_connect(&args, "hello\n");
        assert_eq!(code, *want, "{url}: {err}");
    }
    assert_eq!(server.accepted(), 1, "only the allowed open connects");

    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !text.contains("s3cret"),
        "query values are redacted:\n{text}"
    );
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let decisions: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["record"] == "decision")
        .collect();
    let finished: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["record"] == "finished")
        .collect();
    assert_eq!(decisions.len(), cases.len(), "{text}");
    assert_eq!(finished.len(), 1, "{text}");
    assert_eq!(decisions[0]["decision"], "allow");
    assert_eq!(finished[0]["id"], decisions[0]["id"]);
    assert_eq!(finished[0]["outcome"], "closed");
    assert_eq!(finished[0]["messages_out"], 1);
    assert_eq!(
        decisions[3]["resolved"],
        serde_json::json!(["93.184.215.14", "127.0.0.1"])
    );
    let codes: Vec<&str> = decisions
        .iter()
        .map(|d| d["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        [
            "allowed",
            "not_granted",
            "not_requested",
            "non_public_address",
            "resolution_failed",
            "invalid_url"
        ]
    );

    // The same policy: every replayed decision is the recorded one.
    let mut replay_args = strs(&["replay", "--format", "json", "--fail-on-change"]);
    replay_args.extend(policy.args());
    replay_args.push(path_str(&audit));
    let (code, out, err) = run(netgrant().args(&replay_args));
    assert_eq!(code, 0, "{err}\n{out}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let replayed: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l["kind"] == "decision").collect();
    assert_eq!(replayed.len(), cases.len(), "{out}");
    for (r, d) in replayed.iter().zip(&decisions) {
        assert_eq!(r["code"], d["code"], "{r}");
        assert_eq!(r["recorded"]["changed"], false, "{r}");
    }
    let summary = lines.last().unwrap();
    assert_eq!(
        summary["recorded"]["lines"],
        cases.len() as u64,
        "{summary}"
    );
    assert_eq!(summary["recorded"]["changed"], 0, "{summary}");
    assert_eq!(summary["skipped"], 1, "the finished record: {summary}");

    // A narrower grant: the allowed open would now be denied.
    std::fs::write(
        policy.grant(),
        format!("plugin = \"echo\"\n\n[[host_api.websocket]]\nurl = \"ws://named.local.test:{port}/\"\n"),
    )
    .unwrap();
    let (code, out, err) = run(netgrant().args(&replay_args));
    assert_eq!(code, 1, "--fail-on-change: {err}\n{out}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["recorded"]["changed"], 1, "{summary}");
    assert_eq!(
        summary["recorded"]["transitions"],
        serde_json::json!([{"from": "allowed", "to": "not_granted", "count": 1}])
    );
}
