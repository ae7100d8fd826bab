-- The expiration-mailer's store. One file serves SQLite and MySQL/MariaDB alike:
-- plain types only (BIGINT, VARCHAR, TEXT, MEDIUMBLOB; SQLite maps them by affinity),
-- times as BIGINT seconds since the Unix epoch (the sqlx `Any` driver has no date types),
-- ids chosen by the program (AUTO_INCREMENT and AUTOINCREMENT are spelled differently).

-- An account; `contact` is a JSON array of URLs, e.g. ["mailto:admin@example.com"].
CREATE TABLE registrations (
    id BIGINT NOT NULL PRIMARY KEY,
    contact TEXT NOT NULL
);

-- Every certificate issued to a registration, as issued (DER).
CREATE TABLE certificates (
    serial VARCHAR(64) NOT NULL PRIMARY KEY,
    registration_id BIGINT NOT NULL,
    der MEDIUMBLOB NOT NULL,
    issued BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX certificates_by_registration ON certificates (registration_id);

-- Mutable state of a certificate; last_expiration_nag_sent is NULL until the first reminder.
CREATE TABLE certificate_status (
    serial VARCHAR(64) NOT NULL PRIMARY KEY,
    status VARCHAR(16) NOT NULL,
    not_after BIGINT NOT NULL,
    last_expiration_nag_sent BIGINT NULL
);
CREATE INDEX certificate_status_by_not_after ON certificate_status (not_after);

-- The set of names of each certificate, hashed (SHA-256 of the sorted lower-case names
-- joined by commas), so a later issuance for the same names shows a renewal.
CREATE TABLE fqdn_sets (
    serial VARCHAR(64) NOT NULL PRIMARY KEY,
    set_hash VARCHAR(64) NOT NULL,
    issued BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE INDEX fqdn_sets_by_hash ON fqdn_sets (set_hash, issued);

-- Reminders sent per address per UTC day, so separate runs respect --mails-per-address-per-day.
CREATE TABLE mail_counts (
    address VARCHAR(320) NOT NULL,
    day BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    PRIMARY KEY (address, day)
);
