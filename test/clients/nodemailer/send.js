// Sends one message with nodemailer over plain SMTP, as a Node service would, so that
// mail-test-srv is tested against nodemailer's own SMTP dialogue (EHLO, AUTH, MAIL FROM...).
//
// usage: node send.js PORT FROM TO SUBJECT [USER PASS]
// Prints the server's final reply on stdout; any error goes to stderr with exit 1.
'use strict';

const nodemailer = require('nodemailer');

async function main() {
    const [port, from, to, subject, user, pass] = process.argv.slice(2);
    if (!port || !from || !to || !subject) {
        console.error('usage: node send.js PORT FROM TO SUBJECT [USER PASS]');
        process.exit(2);
    }
    const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port: Number(port),
        // Plain text on purpose: the test server runs without TLS, and nodemailer would
        // otherwise upgrade with STARTTLS whenever it is offered.
        secure: false,
        ignoreTLS: true,
        auth: user ? { user, pass } : undefined,
        connectionTimeout: 10000,
        greetingTimeout: 10000,
        socketTimeout: 10000,
    });
    const info = await transport.sendMail({
        from,
        to,
        subject,
        text: `Hello ${to},\nthis message was sent by nodemailer.\n`,
    });
    console.log(info.response);
}

main().catch((err) => {
    console.error(`nodemailer: ${err && err.stack ? err.stack : err}`);
    process.exit(1);
});
