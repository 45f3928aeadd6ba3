//! Generates the `Board` service's tonic server and client from a Rust
//! description of it (`tonic_build::manual`): no `.proto` compilation and so
//! no `protoc`, which a fresh machine with only cargo would not have. The
//! messages are written by hand with `prost`'s derive in `src/proto.rs`.

use tonic_build::manual::{Builder, Method, Service};

fn method(name: &str, route: &str, input: &str, output: &str, comment: &str) -> Method {
    Method::builder()
        .name(name)
        .route_name(route)
        .input_type(format!("crate::proto::{input}"))
        .output_type(format!("crate::proto::{output}"))
        .codec_path("tonic_prost::ProstCodec")
        .comment(comment)
        .build()
}

fn main() {
    let board = Service::builder()
        .name("Board")
        .package("portcullis.example.v1")
        .comment("Announcements, protected by portcullis.")
        .method(method(
            "who_am_i",
            "WhoAmI",
            "WhoAmIRequest",
            "WhoAmIReply",
            "The verified caller and its capabilities. Needs a caller.",
        ))
        .method(method(
            "announce",
            "Announce",
            "AnnounceRequest",
            "AnnounceReply",
            "Posts an announcement. Needs the `announce` capability.",
        ))
        .build();
    Builder::new().compile(&[board]);
    println!("cargo::rerun-if-changed=build.rs");
}
