//! The card-number scanner on a corpus of log lines: every published test card in the
//! formats people and programs write them (positives), and numbers that only look like
//! cards (negatives): 100% recall, 0 false positives, and the streaming writer agrees
//! with the one-shot function at every split point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a failed check panics here

use std::io::Write;

use shopsafe::minimize::{RedactingWriter, redact, scan};

fn published() -> Vec<String> {
    include_str!("data/cards/test-cards.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split('\t').nth(1).expect("number").to_owned())
        .collect()
}

/// `n` in groups of 4 (the last shorter), joined by `sep`; Amex-style 4-6-5 for 15 digits.
fn grouped(n: &str, sep: &str) -> String {
    let groups: Vec<&str> = match n.len() {
        15 => vec![&n[..4], &n[4..10], &n[10..]],
        14 => vec![&n[..4], &n[4..10], &n[10..]],
        _ => n
            .as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect(),
    };
    groups.join(sep)
}

fn positives() -> Vec<(String, String)> {
    let mut lines = Vec::new();
    for n in published() {
        let last4 = n[n.len() - 4..].to_owned();
        for line in [
            format!("2026-11-25T10:32:01Z INFO payment accepted card={n} amount=42.00"),
            format!(
                "2026-11-25 10:32:01,123 DEBUG checkout: pan {} exp 08/29",
                grouped(&n, " ")
            ),
            format!(
                "{{\"level\":\"warn\",\"msg\":\"retry\",\"card\":\"{}\"}}",
                grouped(&n, "-")
            ),
            format!("POST /api/pay?number={n}&cvc=*** 402"),
            format!("customer typed ({}) twice", grouped(&n, " ")),
            n.clone(),
            format!("notes: card {n}, call back"),
        ] {
            lines.push((line, last4.clone()));
        }
    }
    lines
}

fn negatives() -> Vec<String> {
    let mut lines = vec![
        "2026-11-25T10:32:01.123456Z INFO request served in 12ms".to_owned(),
        "ts=1732530721123 user=cust-000042 action=login".to_owned(),
        "epoch_ns=1732530721123456789 ok".to_owned(),
        "call +1 415-555-0132 or +44 20 7946 0958".to_owned(),
        "phone: (415) 555 0132 ext 1234".to_owned(),
        "trace 550e8400-e29b-41d4-a716-446655440000 span 9e2b41d4-e29b-41d4-a716-500000000009"
            .to_owned(),
        "order ORD-6011111111111117 shipped".to_owned(),
        "sku=SKU4111111111111111 qty=2".to_owned(),
        "isbn 978-3-16-148410-0 and 9783161484100".to_owned(),
        "iban DE89 3704 0044 0532 0130 00".to_owned(),
        "version 20241115.123045.1 build 4421".to_owned(),
        "ip 192.168.100.200 port 443 bytes 1234567890".to_owned(),
        "amount 4111.11 EUR, 1111.11 USD".to_owned(),
        "hash 0123456789abcdef0123456789abcdef".to_owned(),
        "account 12345678901234567890123 closed".to_owned(),
    ];
    // Timestamps in milliseconds over a year, order numbers, and 16-digit numbers that
    // fail Luhn: generated, so the corpus is large.
    for i in 0..60u64 {
        lines.push(format!(
            "event at {} ms",
            1_700_000_000_000 + i * 525_600_000
        ));
        lines.push(format!("order #{:012} placed", 400_000_000_000 + i * 7_919));
        let mut n = format!("4111{:012}", i * 104_729);
        let last = n.pop().expect("digit");
        let d = n.bytes().rev().enumerate().fold(0u32, |acc, (k, c)| {
            let mut v = u32::from(c - b'0');
            if k % 2 == 0 {
                v *= 2;
                if v > 9 {
                    v -= 9;
                }
            }
            acc + v
        });
        let check = (10 - d % 10) % 10;
        let wrong = (check + 1 + u32::from(last) % 9) % 10;
        lines.push(format!("ref {n}{wrong} (not a card)"));
    }
    lines
}

#[test]
fn every_positive_is_found_and_no_negative_is() {
    let (pos, neg) = (positives(), negatives());
    assert!(
        pos.len() + neg.len() >= 200,
        "{} lines",
        pos.len() + neg.len()
    );
    for (line, last4) in &pos {
        let out = redact(line);
        assert!(out.contains(&format!("[PAN:…{last4}]")), "missed: {line}");
        assert!(scan(out.as_bytes()).is_empty(), "left a number: {out}");
    }
    for line in &neg {
        assert!(scan(line.as_bytes()).is_empty(), "false positive: {line}");
        assert_eq!(redact(line), line.as_str());
    }
}

#[test]
fn the_writer_agrees_with_the_function_at_every_split_of_every_line() {
    let corpus: Vec<String> = positives()
        .into_iter()
        .map(|(l, _)| l)
        .chain(negatives())
        .collect();
    for line in &corpus {
        let text = format!("{line}\n");
        let want = redact(&text).into_owned();
        for split in 0..=text.len() {
            let mut w = RedactingWriter::new(Vec::new());
            w.write_all(&text.as_bytes()[..split]).expect("write");
            w.write_all(&text.as_bytes()[split..]).expect("write");
            let got = String::from_utf8(w.into_inner().expect("inner")).expect("utf8");
            assert_eq!(got, want, "split {split} of {line}");
        }
    }
}

#[test]
fn presidio_credit_card_cases_are_all_found() {
    let mut positives = 0;
    for line in include_str!("data/presidio/credit-cards.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (text, want) = line.split_once('\t').expect("text and count");
        let want: usize = want.parse().expect("count");
        assert_eq!(scan(text.as_bytes()).len(), want, "{text}");
        let out = redact(text);
        assert!(scan(out.as_bytes()).is_empty(), "{out}");
        positives += want;
    }
    assert_eq!(positives, 16);
}

#[test]
fn numbers_beside_non_ascii_punctuation_are_redacted() {
    for line in [
        "card:\u{a0}4111 1111 1111 1111",
        "カード番号：4111111111111111",
        "«4111111111111111»",
        "4111111111111111’s receipt",
    ] {
        let out = redact(line);
        assert!(!out.contains("4111"), "{line} -> {out}");
        let mut w = RedactingWriter::new(Vec::new());
        for piece in line.as_bytes().chunks(3) {
            w.write_all(piece).expect("write");
        }
        assert_eq!(w.into_inner().expect("inner"), out.as_bytes(), "{line}");
    }
    // And the negatives stay negative.
    for line in [
        "order 1700000000000",
        "ORD-6011111111111117",
        "id=a4111111111111111",
    ] {
        assert_eq!(redact(line), line);
    }
}
