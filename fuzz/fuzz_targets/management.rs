//! Management bodies (`add`, `remove`, `set`, `revoke`): a 2xx or a 4xx,
//! never a server error, and nobody ends up holding what the manager lacks.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use portcullis_capabilities::{Capabilities, MemoryStore};
use portcullis_core::dangerous::{authenticated_unverified, principal_from_unverified_claims};
use portcullis_core::{CapabilitiesConfig, RawToken, Secret};
use serde_json::{Value, json};

const MANAGER: &str = "boss@example.com";
const HELD: [&str; 3] = ["user_management", "write", "read"];

fuzz_target!(|data: &[u8]| {
    let Some((&op, body)) = data.split_first() else {
        return;
    };
    let config = CapabilitiesConfig::new([
        ("read", vec![]),
        ("write", vec!["read"]),
        ("moderate", vec!["read", "write"]),
        ("user_management", vec![]),
    ]);
    let store = Arc::new(MemoryStore::with_users([(MANAGER, HELD)]));
    let caps = Capabilities::builder(
        config,
        store,
        Secret::new("Vq7#tN2m$Lx9pR4w!Zc6bH1s@Kd8jF3g"),
    )
    .revocations(Arc::new(MemoryStore::new()))
    .build()
    .expect("service");
    let Value::Object(claims) = json!({"sub": MANAGER, "email": MANAGER}) else {
        unreachable!()
    };
    let principal = principal_from_unverified_claims(
        "https://id.example.com",
        claims,
        RawToken::new(""),
        4_102_444_800,
    )
    .expect("principal");
    let boss = authenticated_unverified(Arc::new(principal));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let answer = rt.block_on(async {
        match op % 4 {
            0 => caps.add(Some(&boss), body).await,
            1 => caps.remove(Some(&boss), body).await,
            2 => caps.set(Some(&boss), body).await,
            _ => caps.revoke(Some(&boss), body).await,
        }
    });
    if let Err(e) = answer {
        let status = e.to_reply("portcullis").status;
        assert!((400..500).contains(&status), "{status}");
    }
    for (who, held) in rt.block_on(caps.stored()).expect("stored") {
        for cap in held {
            assert!(HELD.contains(&cap.as_str()), "{who} holds {cap}");
        }
    }
});
