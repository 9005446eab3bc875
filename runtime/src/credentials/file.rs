//! The secret store netgrant ships: a TOML file of `ref = "value"`, opened
//! explicitly by path (docs/spec.md §9, docs/runtime.md "Credentials").

use super::store::{MemorySecretStore, SecretFuture, SecretRef, SecretStore};
use secrecy::SecretString;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use zeroize::{Zeroize, Zeroizing};

/// The largest secrets file accepted, in bytes.
pub const MAX_SECRETS_FILE_BYTES: u64 = 1024 * 1024;

/// Why a secrets file was refused. No variant carries a value, or any text
/// of the file other than a key that is a valid reference; a syntax error
/// gives only its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretFileError {
    /// Opening or reading failed.
    #[error("cannot read secrets file {}: {kind}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        kind: std::io::ErrorKind,
    },
    /// A symlink (as the last path component), directory, FIFO, device, ….
    #[error("secrets file {} is not a regular file (symlinks are not followed)", path.display())]
    NotRegularFile {
        /// The file.
        path: PathBuf,
    },
    /// Owned by another user.
    #[error("secrets file {} is owned by uid {owner}, not by the current user (uid {current})", path.display())]
    WrongOwner {
        /// The file.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// The effective uid of this process.
        current: u32,
    },
    /// Group or others have some permission.
    #[error("secrets file {} is accessible by group or others (mode {mode:04o}); use chmod 600", path.display())]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Larger than [`MAX_SECRETS_FILE_BYTES`].
    #[error("secrets file {} is larger than {limit} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8.
    #[error("secrets file {} is not UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// Not TOML. Only the line: the parser's message may quote a value.
    #[error("secrets file {} is not valid TOML (line {line})", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
    },
    /// A key that is not a valid secret reference, or one that holds a
    /// table (a dotted key such as `discord.bot`, or a `[section]`: quote
    /// the reference, `"discord.bot"`). The key is shown only when it is a
    /// valid reference — references are public, but a key that is not one
    /// may be a value pasted on the wrong side of `=`.
    #[error("secrets file {}: {} {reason}; keys are secret references ([a-z0-9][a-z0-9._/-]{{0,127}}), quoted when they hold `/` or `.`", path.display(), match key { Some(k) => format!("key `{k}`"), None => "a key".to_string() })]
    InvalidKey {
        /// The file.
        path: PathBuf,
        /// The key, when it is a valid reference.
        key: Option<SecretRef>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A value that is not a string, an empty string, or a string holding a
    /// control character (a trailing newline pasted in, usually).
    #[error("secrets file {}: the value of `{key}` must be a non-empty string without control characters", path.display())]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// The key (a valid reference).
        key: SecretRef,
    },
    /// This platform cannot check ownership and permissions.
    #[error("secrets files are supported on unix only; implement SecretStore")]
    Unsupported,
}

impl SecretFileError {
    /// A stable code for logs and CLI output.
    pub fn code(&self) -> &'static str {
        match self {
            SecretFileError::Io { .. } => "secrets_file_io",
            SecretFileError::NotRegularFile { .. } => "secrets_file_not_regular",
            SecretFileError::WrongOwner { .. } => "secrets_file_owner",
            SecretFileError::TooOpen { .. } => "secrets_file_permissions",
            SecretFileError::TooLarge { .. } => "secrets_file_too_large",
            SecretFileError::NotUtf8 { .. } => "secrets_file_not_utf8",
            SecretFileError::Syntax { .. } => "secrets_file_syntax",
            SecretFileError::InvalidKey { .. } => "secrets_file_invalid_key",
            SecretFileError::InvalidValue { .. } => "secrets_file_invalid_value",
            SecretFileError::Unsupported => "secrets_file_unsupported",
        }
    }
}

/// A TOML file of `"ref" = "value"` lines, read once by
/// [`FileSecretStore::open`] and held in zeroize-on-drop memory.
///
/// ```toml
/// "discord/bot" = "…"
/// github = "…"
/// ```
///
/// It is refused unless it is a regular file (a symlink as the last
/// component is not followed), owned by the effective user and with no
/// group or other permission bits (`chmod 600`). Keys must be secret
/// references; values non-empty strings without control characters. Whether
/// a value may go into a header is checked when it is injected
/// ([`crate::format_header_value`]), since a message may carry more. Nothing
/// is read from the environment. `Debug` lists the references, never a
/// value.
#[derive(Debug)]
pub struct FileSecretStore {
    path: PathBuf,
    secrets: MemorySecretStore,
}

impl FileSecretStore {
    /// Opens, checks and parses the file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SecretFileError> {
        let path = path.as_ref().to_path_buf();
        let bytes = read_checked(&path)?;
        let secrets = parse(&path, &bytes)?;
        Ok(FileSecretStore { path, secrets })
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every reference in the file, sorted.
    pub fn refs(&self) -> Vec<&SecretRef> {
        self.secrets.refs()
    }

    /// Whether the file holds this reference.
    pub fn contains(&self, secret: &SecretRef) -> bool {
        self.secrets.contains(secret)
    }
}

impl SecretStore for FileSecretStore {
    fn get<'a>(&'a self, secret: &'a SecretRef) -> SecretFuture<'a> {
        let v = self.secrets.lookup(secret);
        Box::pin(async move { v })
    }
}

#[cfg(unix)]
fn read_checked(path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let io = |e: std::io::Error| SecretFileError::Io {
        path: path.to_path_buf(),
        kind: e.kind(),
    };
    // O_NOFOLLOW: a symlink as the last component fails (ELOOP) instead of
    // being followed; O_NONBLOCK: opening a FIFO does not wait for a writer.
    // Every check below is on the opened descriptor, so the file cannot be
    // swapped between check and read.
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                SecretFileError::NotRegularFile {
                    path: path.to_path_buf(),
                }
            } else {
                io(e)
            }
        })?;
    let meta = file.metadata().map_err(io)?;
    if !meta.file_type().is_file() {
        return Err(SecretFileError::NotRegularFile {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let current = unsafe { libc::geteuid() };
    if meta.uid() != current {
        return Err(SecretFileError::WrongOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            current,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    let too_large = || SecretFileError::TooLarge {
        path: path.to_path_buf(),
        limit: MAX_SECRETS_FILE_BYTES,
    };
    if meta.len() > MAX_SECRETS_FILE_BYTES {
        return Err(too_large());
    }
    // Sized up front so the buffer does not grow: a reallocation would leave
    // an unzeroized copy behind (unless the file grows while being read).
    let mut bytes = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    file.by_ref()
        .take(MAX_SECRETS_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_SECRETS_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(not(unix))]
fn read_checked(_path: &Path) -> Result<Zeroizing<Vec<u8>>, SecretFileError> {
    Err(SecretFileError::Unsupported)
}

fn parse(path: &Path, bytes: &[u8]) -> Result<MemorySecretStore, SecretFileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| SecretFileError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e.span().map_or(0, |s| s.start.min(text.len()));
        SecretFileError::Syntax {
            path: path.to_path_buf(),
            line: text.as_bytes()[..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
        }
    })?;
    // Every value string is zeroized whatever happens below (the table's
    // keys are not secret).
    let mut entries: Vec<(String, bool, Zeroizing<Option<String>>)> = table
        .into_iter()
        .map(|(k, v)| {
            let is_table = v.is_table();
            let s = match v {
                toml::Value::String(s) => Some(s),
                other => {
                    // Nested tables and arrays may hold strings too.
                    drop_zeroized(other);
                    None
                }
            };
            (k, is_table, Zeroizing::new(s))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut store = MemorySecretStore::new();
    for (key, is_table, value) in &entries {
        // A table comes from a dotted key or a `[section]`: the key is what
        // is wrong (an unquoted `discord.bot`).
        if SecretRef::parse(key).is_err() {
            return Err(SecretFileError::InvalidKey {
                path: path.to_path_buf(),
                key: None,
                reason: key_problem(key),
            });
        }
        if *is_table {
            return Err(SecretFileError::InvalidKey {
                path: path.to_path_buf(),
                key: SecretRef::parse(key).ok(),
                reason: "holds a table",
            });
        }
        let secret = SecretRef::parse(key).expect("checked");
        match value.as_deref() {
            Some(v) if valid_value(v) => {
                // A fresh exact-size copy: the SecretString owns its own
                // buffer; `entries` zeroizes the parser's.
                store = store.with(secret, SecretString::from(v));
            }
            _ => {
                return Err(SecretFileError::InvalidValue {
                    path: path.to_path_buf(),
                    key: secret,
                })
            }
        }
    }
    Ok(store)
}

/// Non-empty, no C0 or C1 control character and no DEL.
fn valid_value(v: &str) -> bool {
    !v.is_empty() && !v.chars().any(char::is_control)
}

/// Zeroizes every string inside a value that is not used.
fn drop_zeroized(v: toml::Value) {
    match v {
        toml::Value::String(mut s) => s.zeroize(),
        toml::Value::Array(a) => a.into_iter().for_each(drop_zeroized),
        toml::Value::Table(t) => t.into_iter().for_each(|(_, v)| drop_zeroized(v)),
        _ => {}
    }
}

/// Why a key is not a reference, without quoting it.
fn key_problem(key: &str) -> &'static str {
    let b = key.as_bytes();
    if b.is_empty() {
        "is empty"
    } else if b.len() > 128 {
        "is longer than 128 bytes"
    } else if b.iter().any(u8::is_ascii_uppercase) {
        "has an upper-case letter"
    } else if !matches!(b[0], b'a'..=b'z' | b'0'..=b'9') {
        "does not start with a letter or digit"
    } else {
        "has a character other than a-z, 0-9, `.`, `_`, `/`, `-`"
    }
}

impl fmt::Display for FileSecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({} secrets)",
            self.path.display(),
            self.secrets.refs().len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> PathBuf {
        PathBuf::from("s.toml")
    }

    #[test]
    fn parses_quoted_refs() {
        let s = parse(
            &p(),
            br#""discord/bot" = "Bot-abc"
github = "ghp_x"
"a.b" = "v w"
"#,
        )
        .unwrap();
        let refs: Vec<_> = s.refs().iter().map(|r| r.as_str()).collect();
        assert_eq!(refs, ["a.b", "discord/bot", "github"]);
    }

    #[test]
    fn bad_entries_name_the_key_never_the_value() {
        let sentinel = "SENTINEL-9f8e";
        for (text, code, key) in [
            (
                format!("Bad = \"{sentinel}\""),
                "secrets_file_invalid_key",
                "a key has an upper-case letter",
            ),
            (
                format!("discord.bot = \"{sentinel}\""),
                "secrets_file_invalid_key",
                "discord",
            ),
            (
                format!("x = [\"{sentinel}\"]"),
                "secrets_file_invalid_value",
                "x",
            ),
            (
                format!("x = {{ y = \"{sentinel}\" }}"),
                "secrets_file_invalid_key",
                "x",
            ),
            (
                format!("[s]\ny = \"{sentinel}\""),
                "secrets_file_invalid_key",
                "s",
            ),
            ("x = 1".to_string(), "secrets_file_invalid_value", "x"),
            ("x = \"\"".to_string(), "secrets_file_invalid_value", "x"),
            (
                format!("x = \"{sentinel}\\n\""),
                "secrets_file_invalid_value",
                "x",
            ),
            (
                format!("x = \"{sentinel}\\u0085\""),
                "secrets_file_invalid_value",
                "x",
            ),
            (
                format!("x = \"{sentinel}\\u007f\""),
                "secrets_file_invalid_value",
                "x",
            ),
            (format!("x = \"{sentinel}"), "secrets_file_syntax", ""),
            (
                format!("x = \"a\"\nx = \"{sentinel}\""),
                "secrets_file_syntax",
                "",
            ),
            (format!("x = '{sentinel}' junk"), "secrets_file_syntax", ""),
        ] {
            let e = parse(&p(), text.as_bytes()).unwrap_err();
            assert_eq!(e.code(), code, "{text:?}: {e}");
            let shown = format!("{e} {e:?}");
            assert!(shown.contains(key), "{text:?}: {shown}");
            assert!(!shown.contains(sentinel), "{text:?}: {shown}");
            assert!(!shown.contains("9f8e"), "{text:?}: {shown}");
        }
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = parse(&p(), b"a = \"x\"\nb = \"y\"\nc = oops\n").unwrap_err();
        assert_eq!(e, SecretFileError::Syntax { path: p(), line: 3 });
    }

    #[test]
    fn bad_keys_are_described_not_quoted() {
        for (key, reason) in [
            ("", "is empty"),
            (&*"k".repeat(129), "is longer than 128 bytes"),
            ("Key", "has an upper-case letter"),
            ("-k", "does not start with a letter or digit"),
            ("a b", "has a character other than"),
            ("a\\u0000b", "has a character other than"),
        ] {
            let e = parse(&p(), format!("\"{key}\" = \"v\"").as_bytes()).unwrap_err();
            let SecretFileError::InvalidKey {
                key: None,
                reason: r,
                ..
            } = &e
            else {
                panic!("{key:?}: {e:?}");
            };
            assert!(r.starts_with(reason), "{key:?}: {r}");
            assert!(e.to_string().contains("a key "), "{e}");
        }
    }

    #[test]
    fn not_utf8() {
        let e = parse(&p(), b"a = \"\xff\"").unwrap_err();
        assert_eq!(e.code(), "secrets_file_not_utf8");
    }
}
