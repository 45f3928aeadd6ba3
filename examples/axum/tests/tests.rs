//! The main example, driven as easy-oauth's README drives its app: guests,
//! users, friends and admins, through the real login flow against the mock
//! provider (the scenarios shared by the three main examples).

use example_axum::{CONFIG_FILE, USER_FILE, app};
use portcullis_axum::portcullis_oidc::RelyingParty;
use portcullis_testing::demo::Files;
use portcullis_testing::demo::scenarios::Example;
use portcullis_testing::serve::{self, Stop};

struct Axum;

impl Example for Axum {
    fn files(&self) -> Files {
        Files {
            config: CONFIG_FILE,
            users: USER_FILE,
        }
    }

    fn serve(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        serve::axum(listener, app(rp)).expect("the server starts")
    }
}

portcullis_testing::demo_scenarios!(Axum);
