//! `expiration-mailer import`: registers certificates from PEM files for one contact.

use mailer_programs::cli::Fatal;
use mailer_programs::db::{Imported, Store};

use crate::args::ImportArgs;
use crate::certs::read_pem_file;

/// Reads every PEM file first (a bad one stops the import before anything is written),
/// then stores the certificates under the contact's registration.
pub async fn import(store: &Store, args: &ImportArgs) -> Result<(), Fatal> {
    for contact in &args.contact {
        if !contact.starts_with("mailto:") || contact.len() <= "mailto:".len() {
            return Err(Fatal::usage(anyhow::anyhow!(
                "--contact {contact:?} is not a mailto: URL"
            )));
        }
    }
    let mut certs = Vec::new();
    for path in &args.pem {
        certs.extend(read_pem_file(path).map_err(Fatal::usage)?);
    }
    let registration = store.registration_for_contact(&args.contact).await?;
    let (mut added, mut present) = (0, 0);
    for cert in &certs {
        match store.import_certificate(registration, cert).await? {
            Imported::Added => added += 1,
            Imported::AlreadyPresent => present += 1,
        }
    }
    println!(
        "imported {added} certificate(s), {present} already present, registration {registration}"
    );
    Ok(())
}
