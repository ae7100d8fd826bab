//! rustls server configuration: PEM files, or a CA + `localhost` certificate generated at start.
//!
//! The generated CA exists so a client under test can trust the server the proper way
//! (pointing at `ca.pem`) instead of turning verification off. Only the ring provider is
//! used: with aws-lc also compiled in, rustls' default builder panics (see CRATES.md).
//!
//! `--tls-cert-fault` swaps the leaf for a wrong one ([`CertFault`]): expired or for another
//! host (both still signed by the CA), or self-signed outside it. `ca.pem` is written as
//! usual, so a client that trusts it fails for exactly that one reason.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{CertFault, CertSource, Config, TlsMode};

/// Why TLS could not be set up; each names the file or step at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS is on but no certificate source is configured")]
    NoSource,
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid PEM: {source}")]
    Pem { path: PathBuf, source: pem::Error },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no certificate found in {0}")]
    NoCertificate(PathBuf),
    #[error("no private key found in {0}")]
    NoKey(PathBuf),
    #[error("cannot generate the test certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(
        "--tls-cert-fault needs a generated certificate (--generate-cert, or --tls alone), not --cert/--key"
    )]
    CertFaultNeedsGenerated,
    #[error("certificate and key rejected: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The only name in the `wrong-host` certificate: a reserved name no test server answers to.
pub const WRONG_HOST: &str = "wrong.example";

/// The PEM files written by [`generate`].
#[derive(Debug, Clone)]
pub struct GeneratedFiles {
    /// The self-signed CA a client should trust.
    pub ca: PathBuf,
    /// The `localhost` / `127.0.0.1` leaf certificate.
    pub cert: PathBuf,
    /// The leaf's private key (PKCS#8).
    pub key: PathBuf,
}

/// The server configuration for `config`, or `None` when TLS is off.
/// A `CertSource::Generate` writes fresh `ca.pem`, `cert.pem` and `key.pem` first.
pub fn server_config(config: &Config) -> Result<Option<Arc<ServerConfig>>, TlsError> {
    if config.tls == TlsMode::None {
        return Ok(None);
    }
    let (certs, key) = match &config.cert {
        None => return Err(TlsError::NoSource),
        Some(CertSource::Files { .. }) if config.tls_cert_fault.is_some() => {
            return Err(TlsError::CertFaultNeedsGenerated);
        }
        Some(CertSource::Files { cert, key }) => load_pem(cert, key)?,
        Some(CertSource::Generate { dir }) => {
            let files = generate_with_fault(dir, config.tls_cert_fault)?;
            load_pem(&files.cert, &files.key)?
        }
    };
    build(certs, key).map(Some)
}

/// Builds a rustls server config from a chain and key, on the ring provider.
pub fn build(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>, TlsError> {
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
    Ok(Arc::new(config))
}

/// Reads a certificate chain and a private key from PEM files.
pub fn load_pem(
    cert: &Path,
    key: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let read = |path: &Path| {
        fs::read(path).map_err(|source| TlsError::Read {
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let certs = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            path: cert.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert.to_owned()));
    }
    let key_pem = read(key)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|source| match source {
        pem::Error::NoItemsFound => TlsError::NoKey(key.to_owned()),
        source => TlsError::Pem {
            path: key.to_owned(),
            source,
        },
    })?;
    Ok((certs, key_der))
}

/// Generates a CA and a leaf for `localhost` and `127.0.0.1`, and writes `ca.pem`,
/// `cert.pem` and `key.pem` into `dir` (created when missing).
pub fn generate(dir: &Path) -> Result<GeneratedFiles, TlsError> {
    generate_with_fault(dir, None)
}

/// Like [`generate`], with the leaf in `cert.pem` made wrong as `fault` says.
pub fn generate_with_fault(
    dir: &Path,
    fault: Option<CertFault>,
) -> Result<GeneratedFiles, TlsError> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "mail-test-srv test CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::from_params(&ca_params, &ca_key);

    let leaf_key = KeyPair::generate()?;
    let names = match fault {
        Some(CertFault::WrongHost) => vec![WRONG_HOST.to_owned()],
        _ => vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
    };
    let mut leaf_params = CertificateParams::new(names.clone())?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, names[0].as_str());
    if fault == Some(CertFault::Expired) {
        // Long past, and long enough ago that no clock skew allowance reaches it.
        leaf_params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        leaf_params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    }
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    let leaf_cert = if fault == Some(CertFault::Untrusted) {
        leaf_params.self_signed(&leaf_key)?
    } else {
        leaf_params.use_authority_key_identifier_extension = true;
        leaf_params.signed_by(&leaf_key, &issuer)?
    };

    fs::create_dir_all(dir).map_err(|source| TlsError::Write {
        path: dir.to_owned(),
        source,
    })?;
    let files = GeneratedFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for (path, text) in [
        (&files.ca, ca_cert.pem()),
        (&files.cert, leaf_cert.pem()),
        (&files.key, leaf_key.serialize_pem()),
    ] {
        fs::write(path, text).map_err(|source| TlsError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_load_back() {
        let dir = std::env::temp_dir().join(format!("mts-tls-unit-{}", std::process::id()));
        let files = generate(&dir).expect("generate");
        let (certs, key) = load_pem(&files.cert, &files.key).expect("load");
        assert_eq!(certs.len(), 1);
        build(certs, key).expect("rustls accepts it");
        assert!(
            fs::read_to_string(&files.ca)
                .unwrap()
                .contains("BEGIN CERTIFICATE")
        );
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = load_pem(
            Path::new("/nonexistent/c.pem"),
            Path::new("/nonexistent/k.pem"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/c.pem"), "{err}");
    }

    #[test]
    fn files_without_pem_blocks_name_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let files = generate(dir.path()).expect("generate");
        let empty = dir.path().join("empty.pem");
        fs::write(&empty, "no PEM here\n").unwrap();
        let broken = dir.path().join("broken.pem");
        fs::write(&broken, "-----BEGIN CERTIFICATE-----\n@@@\n").unwrap();

        let err = load_pem(&empty, &files.key).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate(_)), "{err}");
        let err = load_pem(&files.cert, &empty).unwrap_err();
        assert!(matches!(err, TlsError::NoKey(_)), "{err}");
        let err = load_pem(&broken, &files.key).unwrap_err();
        assert!(
            matches!(err, TlsError::Pem { .. }) && err.to_string().contains("broken.pem"),
            "{err}"
        );
    }
}
