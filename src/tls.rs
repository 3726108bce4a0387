//! MQTT over TLS: the per-broker `tls:` settings, read and checked when the
//! config loads (so `roomctl check` finds a missing or broken certificate),
//! turned into a rustls client config (ring provider), and TLS failures said
//! in words a technician can act on.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

/// Why the TLS settings of a broker cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {what} {path}: {why}")]
    Read {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        why: String,
    },
    /// A file has no PEM item of the kind needed.
    #[error("{what} {path} holds no {kind} (a PEM file with `-----BEGIN {kind}-----`)")]
    Empty {
        /// Which setting.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What was expected (`CERTIFICATE`, `PRIVATE KEY`).
        kind: &'static str,
    },
    /// A certificate or key that rustls refuses.
    #[error("{what}: {why}")]
    Invalid {
        /// Which setting.
        what: &'static str,
        /// rustls's reason.
        why: String,
    },
    /// One of `client_cert` / `client_key` without the other.
    #[error("tls.client_cert and tls.client_key go together")]
    HalfClientAuth,
    /// No usable root certificate at all.
    #[error("no CA certificate to check the broker with: set tls.ca_file")]
    NoRoots,
}

/// A broker's TLS settings, loaded.
#[derive(Clone)]
pub struct TlsSettings {
    /// `tls.ca_file`; none means the system's CA certificates.
    pub ca_file: Option<PathBuf>,
    /// `tls.client_cert` (with `client_key`): for `require_certificate`.
    pub client_cert: Option<PathBuf>,
    /// `tls.client_key`.
    pub client_key: Option<PathBuf>,
    /// Built once; shared by every connection to this broker.
    pub client_config: Arc<ClientConfig>,
}

/// Equal when they read the same files (what a reload compares).
impl PartialEq for TlsSettings {
    fn eq(&self, other: &Self) -> bool {
        self.ca_file == other.ca_file
            && self.client_cert == other.client_cert
            && self.client_key == other.client_key
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Paths only: the config's Debug text is compared on reload.
        f.debug_struct("TlsSettings")
            .field("ca_file", &self.ca_file)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .finish()
    }
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| TlsError::Read {
        what,
        path: path.to_path_buf(),
        why: e.to_string(),
    })
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
            kind: "CERTIFICATE",
        });
    }
    Ok(certs)
}

impl TlsSettings {
    /// Reads the files and builds the client config. `ca_file: None` uses
    /// the system's CA certificates.
    pub fn load(
        ca_file: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self, TlsError> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(p) => {
                for c in certificates("tls.ca_file", p)? {
                    roots.add(c).map_err(|e| TlsError::Invalid {
                        what: "tls.ca_file",
                        why: e.to_string(),
                    })?;
                }
            }
            None => {
                for c in rustls_native_certs::load_native_certs().certs {
                    let _ = roots.add(c);
                }
                if roots.is_empty() {
                    return Err(TlsError::NoRoots);
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Invalid {
                what: "tls",
                why: e.to_string(),
            })?
            .with_root_certificates(roots);
        let config = match (client_cert, client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(c), Some(k)) => {
                let chain = certificates("tls.client_cert", c)?;
                let pem = read("tls.client_key", k)?;
                let key = PrivateKeyDer::from_pem_slice(&pem).map_err(|_| TlsError::Empty {
                    what: "tls.client_key",
                    path: k.to_path_buf(),
                    kind: "PRIVATE KEY",
                })?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::Invalid {
                        what: "tls.client_cert/client_key",
                        why: e.to_string(),
                    })?
            }
            _ => return Err(TlsError::HalfClientAuth),
        };
        Ok(TlsSettings {
            ca_file: ca_file.map(Path::to_path_buf),
            client_cert: client_cert.map(Path::to_path_buf),
            client_key: client_key.map(Path::to_path_buf),
            client_config: Arc::new(config),
        })
    }
}

/// A TLS failure in words (what to check), from rumqttc's error.
pub fn describe(e: &rumqttc::TlsError) -> String {
    use rumqttc::TlsError as E;
    let rustls_error = match e {
        E::TLS(r) => Some(r),
        // tokio-rustls hands rustls's error over inside an I/O error.
        E::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    if let Some(why) = rustls_error.and_then(in_words) {
        return format!("TLS: {why}");
    }
    match e {
        E::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            "TLS: the broker closed the connection during the handshake (a plain MQTT port, or it wants a client certificate?)".into()
        }
        E::DNSName(_) => "TLS: the broker's host is not a valid name for TLS".into(),
        E::Io(io) => format!("TLS: {io}"),
        other => format!("{other}"),
    }
}

/// A rustls error anywhere in `e`'s chain (TLS 1.3 reports a refused
/// client certificate only after the handshake, as an I/O error while
/// reading MQTT), in words.
pub fn find_in(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(format!(
                "TLS: {}",
                in_words(r).map_or_else(|| r.to_string(), String::from)
            ));
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = inner.downcast_ref::<rustls::Error>()
        {
            return Some(format!(
                "TLS: {}",
                in_words(r).map_or_else(|| r.to_string(), String::from)
            ));
        }
        cur = err.source();
    }
    None
}

fn in_words(e: &rustls::Error) -> Option<&'static str> {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    Some(match e {
        R::InvalidCertificate(C::UnknownIssuer) => {
            "the broker's certificate is not signed by the CA in tls.ca_file (unknown issuer)"
        }
        R::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the broker's certificate is not for this host name or address (connect by the name in its certificate)"
        }
        R::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the broker's certificate has expired (or the Pi's clock is wrong)"
        }
        R::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
            "the broker's certificate is not valid yet (is the Pi's clock set?)"
        }
        R::AlertReceived(
            A::CertificateRequired | A::HandshakeFailure | A::BadCertificate | A::UnknownCA,
        ) => {
            "the broker refused the handshake: it wants a client certificate it trusts (tls.client_cert / tls.client_key)"
        }
        R::InvalidMessage(_) => "the broker does not speak TLS on this port (a plain MQTT port?)",
        _ => return None,
    })
}
