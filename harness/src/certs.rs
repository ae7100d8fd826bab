//! Test certificates with a chosen validity, written as PEM files for `expiration-mailer import`.
//! Self-signed is enough: the mailer reads names, serial and dates, it does not verify a chain.

use std::path::Path;

use anyhow::Context;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SerialNumber};
use time::OffsetDateTime;

/// One certificate to generate.
#[derive(Debug, Clone)]
pub struct TestCert {
    pub serial: u64,
    /// DNS names; the first is also the subject common name.
    pub domains: Vec<String>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl TestCert {
    /// Generates it and writes it as one PEM certificate to `path`.
    pub fn write_pem(&self, path: &Path) -> anyhow::Result<()> {
        let mut params = CertificateParams::new(self.domains.clone())
            .with_context(|| format!("bad names {:?}", self.domains))?;
        let mut subject = DistinguishedName::new();
        if let Some(first) = self.domains.first() {
            subject.push(DnType::CommonName, first.as_str());
        }
        params.distinguished_name = subject;
        params.serial_number = Some(SerialNumber::from(self.serial));
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        let key = KeyPair::generate().context("cannot generate a key")?;
        let cert = params
            .self_signed(&key)
            .context("cannot sign the certificate")?;
        std::fs::write(path, cert.pem()).with_context(|| format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn writes_a_pem_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.pem");
        let now = OffsetDateTime::now_utc();
        let cert = TestCert {
            serial: 42,
            domains: vec!["a.example.com".into(), "b.example.com".into()],
            not_before: now - Duration::days(1),
            not_after: now + Duration::days(30),
        };
        cert.write_pem(&path).unwrap();
        let pem = std::fs::read_to_string(&path).unwrap();
        assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"), "{pem}");
    }
}
