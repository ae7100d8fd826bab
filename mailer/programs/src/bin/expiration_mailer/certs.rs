//! Reading certificates: PEM files going into the store, DER coming out of it.

use std::path::Path;

use anyhow::{Context, anyhow};
use mailer_programs::db::NewCertificate;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;
use x509_parser::prelude::FromDer;

/// Every certificate in a PEM file. A file with no certificate, or one that does not parse,
/// is an error naming the file.
pub fn read_pem_file(path: &Path) -> anyhow::Result<Vec<NewCertificate>> {
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut certs = Vec::new();
    for (index, block) in Pem::iter_from_buffer(&data).enumerate() {
        let block = block.map_err(|e| {
            anyhow!(
                "{}: PEM block {} is malformed: {e}",
                path.display(),
                index + 1
            )
        })?;
        if block.label != "CERTIFICATE" {
            continue;
        }
        let cert = from_der(&block.contents)
            .with_context(|| format!("{}: certificate {}", path.display(), index + 1))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(anyhow!(
            "{}: no PEM certificate found (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// Parses one DER certificate into what the store keeps.
pub fn from_der(der: &[u8]) -> anyhow::Result<NewCertificate> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| anyhow!("not a valid X.509 certificate: {e}"))?;
    let names = dns_names(&cert);
    if names.is_empty() {
        return Err(anyhow!("the certificate names no DNS name"));
    }
    Ok(NewCertificate {
        serial: serial_hex(cert.raw_serial()),
        der: der.to_vec(),
        names,
        issued: cert.validity().not_before.timestamp(),
        expires: cert.validity().not_after.timestamp(),
    })
}

/// The DNS names of a stored certificate, for the reminder; empty when the DER is unreadable
/// (the reminder then names the certificate by serial).
pub fn names_from_der(der: &[u8]) -> Vec<String> {
    match X509Certificate::from_der(der) {
        Ok((_, cert)) => dns_names(&cert),
        Err(_) => Vec::new(),
    }
}

/// subjectAltName DNS names, else the subject's common names; lower-case, sorted, unique.
fn dns_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|name| match name {
                GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names = cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .map(str::to_ascii_lowercase)
            .collect();
    }
    names.sort();
    names.dedup();
    names
}

/// Lower-case hex of the serial without the sign-padding zero bytes DER may add.
fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    raw[start..].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_drop_leading_zero_bytes() {
        assert_eq!(serial_hex(&[0x00, 0x9a, 0x01]), "9a01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x7f]), "7f");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        assert!(from_der(b"not der").is_err());
    }
}
