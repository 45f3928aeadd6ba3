//! The main example on actix.

fn main() {}
