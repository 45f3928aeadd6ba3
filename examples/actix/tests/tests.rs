//! The main example on actix-web, driven as easy-oauth's README drives its app: guests,
//! users, friends and admins, through the real login flow against the mock
//! provider (the scenarios shared by the three main examples).

use example_actix::{CONFIG_FILE, USER_FILE, app};
use portcullis_actix::portcullis_oidc::RelyingParty;
use portcullis_testing::demo::Files;
use portcullis_testing::demo::scenarios::Example;
use portcullis_testing::serve::{self, Stop};

struct Actix;

impl Example for Actix {
    fn files(&self) -> Files {
        Files {
            config: CONFIG_FILE,
            users: USER_FILE,
        }
    }

    fn serve(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        serve::actix(listener, move || app(rp.clone())).expect("the server starts")
    }
}

portcullis_testing::demo_scenarios!(Actix);
