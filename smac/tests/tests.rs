//! portcullis-smac's integration tests: SMAC's configuration against the
//! mock provider's Cognito mode and an in-process secret store
//! (`mock_pools`), and against moto's emulator of Secrets Manager and
//! Cognito (`moto`).

mod mock_pools;
mod moto;

use std::collections::HashMap;

/// An environment map from pairs.
pub fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Request headers as core reads them.
pub fn headers<'a>(pairs: &'a [(&'a str, &'a str)]) -> &'a [(&'a str, &'a str)] {
    pairs
}
