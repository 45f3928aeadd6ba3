//! The main example on poem, driven as easy-oauth's README drives its app: guests,
//! users, friends and admins, through the real login flow against the mock
//! provider (the scenarios shared by the three main examples).

use example_poem::{CONFIG_FILE, USER_FILE, app};
use portcullis_poem::portcullis_oidc::RelyingParty;
use portcullis_testing::demo::Files;
use portcullis_testing::demo::scenarios::Example;
use portcullis_testing::serve::{self, Stop};

struct Poem;

impl Example for Poem {
    fn files(&self) -> Files {
        Files {
            config: CONFIG_FILE,
            users: USER_FILE,
        }
    }

    fn serve(&self, listener: std::net::TcpListener, rp: RelyingParty) -> Stop {
        serve::poem(listener, app(rp)).expect("the server starts")
    }
}

portcullis_testing::demo_scenarios!(Poem);
