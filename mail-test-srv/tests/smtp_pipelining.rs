//! Pipelining (RFC 2920): commands sent in one write are answered in order, and several
//! whole transactions in one write are each stored.

mod common;

use common::{Client, start, stored};
use mail_test_srv::Config;

#[tokio::test]
async fn one_write_whole_dialogue_replies_in_order() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::connect(&server).await;
    c.send(
        b"EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nRCPT TO:<bad>\r\nRCPT TO:<z@y>\r\nDATA\r\n\
          Subject: p\r\n\r\n..line\r\n.\r\nNOOP\r\nFOO\r\nQUIT\r\n",
    )
    .await;
    let mut codes = Vec::new();
    for _ in 0..10 {
        codes.push(c.reply().await.unwrap().code);
    }
    assert_eq!(codes, [250, 250, 250, 501, 250, 354, 250, 250, 500, 221]);
    assert_eq!(c.read_to_end().await.unwrap(), b"");
    let mail = stored(&server);
    assert_eq!(mail[0].recipients, ["x@y", "z@y"]);
    assert_eq!(&mail[0].data[..], b"Subject: p\r\n\r\n.line\r\n");
}

#[tokio::test]
async fn many_transactions_in_one_write() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::ehlo(&server).await;
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend_from_slice(
            format!("MAIL FROM:<s{i}@b>\r\nRCPT TO:<r{i}@y>\r\nDATA\r\nmsg {i}\r\n.\r\n")
                .as_bytes(),
        );
    }
    c.send(&batch).await;
    for _ in 0..50 {
        for code in [250, 250, 354, 250] {
            assert_eq!(c.reply().await.unwrap().code, code);
        }
    }
    let mail = stored(&server);
    assert_eq!(mail.len(), 50);
    for (i, m) in mail.iter().enumerate() {
        assert_eq!(m.from, format!("s{i}@b"));
        assert_eq!(&m.data[..], format!("msg {i}\r\n").as_bytes());
    }
}

#[tokio::test]
async fn bytes_split_anywhere_give_the_same_result() {
    let server = start(Config::ephemeral()).await;
    let mut c = Client::connect(&server).await;
    let script = b"EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nDATA\r\nhello\r\n.\r\nQUIT\r\n";
    for byte in script.chunks(1) {
        c.send(byte).await;
    }
    let mut codes = Vec::new();
    for _ in 0..6 {
        codes.push(c.reply().await.unwrap().code);
    }
    assert_eq!(codes, [250, 250, 250, 354, 250, 221]);
    assert_eq!(&stored(&server)[0].data[..], b"hello\r\n");
}
