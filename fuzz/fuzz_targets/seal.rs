//! Sealed cookies: text from the browser never opens; what is sealed opens
//! to itself, and a changed byte is refused.
#![no_main]

// The sealing module is crate-private; it is compiled here as it is.
#[allow(dead_code, unreachable_pub)]
#[path = "../../oidc/src/seal.rs"]
mod seal;

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

fn sealer() -> &'static seal::Sealer {
    static S: OnceLock<seal::Sealer> = OnceLock::new();
    S.get_or_init(|| seal::Sealer::new(&[42u8; 32]).expect("sealer"))
}

fuzz_target!(|data: &[u8]| {
    let sealer = sealer();
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(sealer.open("s", text), None);
    }
    let sealed = sealer.seal("s", data).expect("sealed");
    assert_eq!(sealer.open("s", &sealed).as_deref(), Some(data));
    if let Some(&first) = data.first() {
        let mut bytes = sealed.into_bytes();
        let i = usize::from(first) % bytes.len();
        bytes[i] ^= 1;
        let changed = String::from_utf8_lossy(&bytes);
        assert_eq!(sealer.open("s", &changed), None);
    }
});
