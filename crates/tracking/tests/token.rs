//! Tracking tokens: what is sealed opens again; anything forged, altered, truncated, of the
//! other kind or made with another key does not.

use tracking::token::{Kind, Token, TrackingKey};

fn click() -> Token {
    Token {
        kind: Kind::Click,
        message_id: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
        sent_s: 1_796_000_000,
        link: 3,
        tenant: "t_1".into(),
        recipient: "ann@example.com".into(),
        campaign: "cp_0123456789abcdef".into(),
        url: "https://shop.example/items?id=7&utm=news#top".into(),
        full_address: false,
        variant: Some(2),
        zone: "Asia/Kolkata".into(),
    }
}

#[test]
fn sealed_tokens_open_and_nothing_else_does() {
    let key = TrackingKey::new(&[7; 32]);
    let sealed = key.seal(&click()).expect("seals");
    assert!(
        sealed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "URL-safe: {sealed}"
    );
    assert_eq!(key.open(Kind::Click, &sealed), Some(click()));
    assert_eq!(
        key.open(Kind::Open, &sealed),
        None,
        "a click token is no open token"
    );
    assert_eq!(TrackingKey::new(&[8; 32]).open(Kind::Click, &sealed), None);
    // Every single-character change is refused.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for i in 0..sealed.len() {
        let mut bytes = sealed.clone().into_bytes();
        bytes[i] = alphabet
            .iter()
            .copied()
            .find(|&c| c != bytes[i])
            .expect("another character");
        let altered = String::from_utf8(bytes).expect("ascii");
        assert_eq!(key.open(Kind::Click, &altered), None, "changed at {i}");
    }
    for cut in [0, 1, 10, sealed.len() - 1] {
        assert_eq!(key.open(Kind::Click, &sealed[..cut]), None);
    }
    assert_eq!(key.open(Kind::Click, "not base64!"), None);
    let open = Token {
        kind: Kind::Open,
        link: 0,
        url: String::new(),
        ..click()
    };
    let sealed_open = key.seal(&open).expect("seals");
    assert_eq!(key.open(Kind::Open, &sealed_open), Some(open.clone()));
    let full = Token {
        full_address: true,
        ..open
    };
    let sealed_full = key.seal(&full).expect("seals");
    assert_eq!(key.open(Kind::Open, &sealed_full), Some(full.clone()));
    let plain = Token {
        variant: None,
        zone: String::new(),
        ..full
    };
    let sealed_plain = key.seal(&plain).expect("seals");
    assert_eq!(key.open(Kind::Open, &sealed_plain), Some(plain));
}

#[test]
fn fields_too_long_to_carry_are_refused() {
    let key = TrackingKey::new(&[7; 32]);
    let long_url = Token {
        url: format!("https://x.example/{}", "a".repeat(5000)),
        ..click()
    };
    assert_eq!(key.seal(&long_url), None);
    let long_recipient = Token {
        recipient: format!("{}@example.com", "a".repeat(300)),
        ..click()
    };
    assert_eq!(key.seal(&long_recipient), None);
}
